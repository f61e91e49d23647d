//! A developer tool for `cargo xtask bench` (`server bench-rotation`): how many refresh
//! rotations a second the database itself allows, with the server's own storage code and
//! database settings, in this process: no HTTP, no signing, no JSON. A rotation here is
//! what one is at the storage level: the read of the presented token and its family, then
//! the write that consumes it and stores its child (the same call a refresh makes). The
//! chains run at once, one task each, as F2's connections do (PostgreSQL answers several
//! at a time; SQLite's writes take turns). It is measured twice, writing as a refresh does
//! (grouped on SQLite) and each rotation alone, and the better of the two is the ceiling:
//! a slower storage path cannot lower the yardstick it is judged by. The bench prints F2
//! as a share of it.

use crate::{
    auth::{refresh::decide, tokens},
    db::{
        sessions::{self as session_rows, Rotation},
        users::{self, NewUser, Role},
        Db,
    },
    service::{
        sessions::{self, Lifetimes},
        Client,
    },
};
use std::time::{Duration, Instant};

/// How the ceiling writes each rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writes {
    /// As a refresh does (`sessions::write_rotation`: grouped on SQLite).
    AsRefresh,
    /// Each in a transaction of its own.
    Alone,
}

/// Rotations a second over `chains` token chains at once, for `duration`, on `db`
/// (migrated). Each chain is a session of its own.
pub async fn measure(
    db: &Db,
    lifetimes: Lifetimes,
    chains: usize,
    duration: Duration,
    writes: Writes,
) -> Result<f64, sqlx::Error> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let user_id = uuid::Uuid::new_v4().to_string();
    let email = format!("ceiling-{user_id}@example.com");
    users::insert(
        db.pool(),
        NewUser {
            id: &user_id,
            email: &email,
            name: "Ceiling",
            password_hash: users::NO_PASSWORD,
            role: Role::User,
            now,
        },
    )
    .await
    .map_err(|e| match e {
        users::InsertUserError::Db(e) => e,
        users::InsertUserError::EmailTaken => broken("its person's email is taken"),
    })?;
    let mut tokens = Vec::with_capacity(chains);
    for _ in 0..chains {
        let first = tokens::random_token(&mut rand::rng());
        let issued =
            sessions::start(db, &user_id, now, lifetimes, Client::default(), first).await?;
        tokens.push((issued.refresh_token, issued.family_id));
    }
    let started = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    for (token, family_id) in tokens {
        let db = db.clone();
        running.spawn(async move {
            chain(
                &db,
                token,
                &family_id,
                now,
                lifetimes,
                started + duration,
                writes,
            )
            .await
        });
    }
    let mut rotations: u64 = 0;
    while let Some(done) = running.join_next().await {
        rotations += done.map_err(|e| sqlx::Error::Protocol(e.to_string()))??;
    }
    Ok(rotations as f64 / started.elapsed().as_secs_f64())
}

/// One chain rotated until `until`: how many rotations.
async fn chain(
    db: &Db,
    mut token: String,
    family_id: &str,
    now: i64,
    lifetimes: Lifetimes,
    until: Instant,
    writes: Writes,
) -> Result<u64, sqlx::Error> {
    let mut rotations = 0;
    while Instant::now() < until {
        let hash = tokens::hash(&token);
        let Some(found) = session_rows::find_presented(db.pool(), &hash).await? else {
            return Err(broken("a chain's token is gone"));
        };
        // The rules run as a refresh runs them: they cost nothing next to the database.
        let decision = decide(Some(sessions::records(&found)), now, lifetimes.policy);
        let crate::auth::refresh::Decision::Rotate { child, expires_at } = decision else {
            return Err(broken("a chain's token does not rotate"));
        };
        let next = tokens::random_token(&mut rand::rng());
        let step = Rotation {
            family_id,
            parent_generation: child - 1,
            parent_hash: &hash,
            child_hash: &tokens::hash(&next),
            child_expires_at: expires_at,
            now,
        };
        let rotated = match writes {
            Writes::AsRefresh => session_rows::write_rotation(db, step).await?,
            Writes::Alone => session_rows::write_rotation_alone(db, step).await?,
        };
        if !rotated {
            return Err(broken("a chain's rotation wrote nothing"));
        }
        token = next;
        rotations += 1;
    }
    Ok(rotations)
}

/// The measurement went wrong in a way no rotation should (the chains are this tool's own).
fn broken(why: &str) -> sqlx::Error {
    sqlx::Error::Protocol(format!("bench-rotation: {why}"))
}
