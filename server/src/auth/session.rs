//! Sessions (refresh families): start one at login, rotate on refresh, end at logout.
//! Carries out the decisions of [`super::refresh::decide`] in one write transaction.

use super::{
    refresh::{decide, Decision, Policy, ReuseCause},
    tokens::{self, ServerSecret},
};
use crate::db::{audit, sessions, Db};

/// A refresh token handed to the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    pub refresh_token: String,
    /// End of the token's idle lifetime, capped by its family's absolute end.
    pub expires_at: i64,
    pub family_id: String,
    pub user_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshFailure {
    Invalid,
    /// The family was revoked because an admin disabled the person (who may be enabled
    /// again since: the caller checks).
    Disabled {
        user_id: String,
    },
    Expired,
    Reused(ReuseCause),
}

#[derive(Clone, Copy, Debug)]
pub struct Lifetimes {
    pub policy: Policy,
    /// Absolute lifetime of a family, seconds.
    pub session_max: i64,
}

pub struct ClientInfo<'a> {
    pub user_agent: Option<&'a str>,
    pub ip: Option<&'a str>,
}

/// Starts a family for `user_id` whose first token is `first_token` (from
/// [`tokens::random_token`]; drawn by the caller so no RNG is held across an await).
pub async fn start(
    db: &Db,
    user_id: &str,
    now: i64,
    lifetimes: Lifetimes,
    client: ClientInfo<'_>,
    first_token: String,
) -> Result<Issued, sqlx::Error> {
    let family_id = uuid::Uuid::new_v4().to_string();
    let token = first_token;
    let expires_at = now + lifetimes.session_max;
    let token_expires_at = (now + lifetimes.policy.refresh_ttl).min(expires_at);
    let mut tx = db.begin_write().await?;
    sessions::create(
        &mut tx,
        sessions::NewFamily {
            id: &family_id,
            user_id,
            token_hash: &tokens::hash(&token),
            now,
            token_expires_at,
            expires_at,
            user_agent: client.user_agent,
            ip: client.ip,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Issued {
        refresh_token: token,
        expires_at: token_expires_at,
        family_id,
        user_id: user_id.to_string(),
    })
}

/// Presents a refresh token: rotates it, converges on the bounded race, or refuses it
/// (revoking the family on a replay).
pub async fn refresh(
    db: &Db,
    secret: &ServerSecret,
    presented: &str,
    now: i64,
    policy: Policy,
) -> Result<Result<Issued, RefreshFailure>, sqlx::Error> {
    if !tokens::looks_valid(presented) {
        return Ok(Err(RefreshFailure::Invalid));
    }
    let hash = tokens::hash(presented);
    let mut tx = db.begin_write().await?;
    // At most two rounds: a second only when a concurrent request consumed the token
    // between our read and our claim (PostgreSQL; SQLite's IMMEDIATE lock rules it out).
    for _ in 0..2 {
        let found = sessions::find_presented(&mut *tx, &hash).await?;
        let decision = decide(
            found.as_ref().map(|p| (p.token, p.family.record())),
            now,
            policy,
        );
        let Some(found) = found else {
            return Ok(Err(RefreshFailure::Invalid));
        };
        let family = &found.family;
        let outcome = match decision {
            Decision::Rotate { child, expires_at } => {
                if !sessions::claim(&mut tx, &hash, now).await? {
                    continue;
                }
                let token = tokens::child_token(secret, &family.id, child, presented);
                sessions::advance(
                    &mut tx,
                    &family.id,
                    child,
                    &tokens::hash(&token),
                    now,
                    expires_at,
                )
                .await?;
                Ok(issued(token, expires_at, family))
            }
            Decision::Converge { newest } => {
                let token = tokens::child_token(secret, &family.id, newest, presented);
                match sessions::token_of_generation(&mut *tx, &family.id, newest).await? {
                    Some((stored, expires_at)) if stored == tokens::hash(&token) => {
                        Ok(issued(token, expires_at, family))
                    }
                    // Only if the server secret changed since the rotation.
                    _ => Err(RefreshFailure::Invalid),
                }
            }
            Decision::Reuse(cause) => {
                sessions::revoke(&mut *tx, &family.id, now, cause.as_str()).await?;
                audit::record(
                    &mut *tx,
                    audit::Event {
                        action: audit::Action::RefreshReused,
                        actor_id: None,
                        subject_id: Some(&family.user_id),
                        ip: None,
                        detail: Some(cause.as_str()),
                        now,
                    },
                )
                .await?;
                Err(RefreshFailure::Reused(cause))
            }
            // Say why when an admin ended the login by disabling the person.
            Decision::Invalid
                if family.revoke_reason.as_deref() == Some(sessions::DISABLED_BY_ADMIN) =>
            {
                Err(RefreshFailure::Disabled {
                    user_id: family.user_id.clone(),
                })
            }
            Decision::Invalid => Err(RefreshFailure::Invalid),
            Decision::Expired => Err(RefreshFailure::Expired),
        };
        tx.commit().await?;
        return Ok(outcome);
    }
    Ok(Err(RefreshFailure::Invalid))
}

fn issued(token: String, expires_at: i64, family: &sessions::FamilyRow) -> Issued {
    Issued {
        refresh_token: token,
        expires_at,
        family_id: family.id.clone(),
        user_id: family.user_id.clone(),
    }
}

/// Ends the family of any of its tokens (used, unused or expired). Unknown tokens are
/// ignored: logout is idempotent.
pub async fn logout(db: &Db, presented: &str, now: i64) -> Result<(), sqlx::Error> {
    if !tokens::looks_valid(presented) {
        return Ok(());
    }
    if let Some(found) = sessions::find_presented(db.pool(), &tokens::hash(presented)).await? {
        if sessions::revoke(db.pool(), &found.family.id, now, "logout").await? {
            let user = Some(found.family.user_id.as_str());
            audit::record(
                db.pool(),
                audit::Event {
                    action: audit::Action::Logout,
                    actor_id: user,
                    subject_id: user,
                    ip: None,
                    detail: None,
                    now,
                },
            )
            .await?;
        }
    }
    Ok(())
}
