//! The group commit of refresh rotations (`db::sessions::write_rotation`): rotations that
//! wait for the write turn together are written in one transaction, each still decided on
//! its own.

use crate::helpers::{on_postgres, spawn_app, unique_email};
use server::{
    auth::tokens,
    db::sessions::{self, Rotation},
};

#[tokio::test]
async fn rotations_waiting_together_are_each_decided_on_their_own() {
    let app = spawn_app().await;
    let mut chains = Vec::new();
    for _ in 0..6 {
        let signed = app.register(&unique_email()).await;
        chains.push((signed.refresh_token(), signed.session.user.id.clone()));
    }
    let db = app.db.clone();
    let now = app.clock.now_unix();
    // What each presents: the family and generation of its token.
    let mut steps = Vec::new();
    for (token, _) in &chains {
        let found = sessions::find_presented(db.pool(), &tokens::hash(token))
            .await
            .unwrap()
            .unwrap();
        steps.push((
            found.family.id.clone(),
            found.token.generation,
            tokens::hash(token),
        ));
    }
    // On SQLite, hold the write turn so that all six queue up behind it and are written
    // together once it is free (PostgreSQL writes each alone).
    let turn = db.begin_write().await.unwrap();
    let mut running = tokio::task::JoinSet::new();
    for (i, (family, generation, parent)) in steps.iter().cloned().enumerate() {
        let db = db.clone();
        // The third's child collides with a stored token: its insert fails.
        let child = if i == 2 {
            steps[0].2.clone()
        } else {
            tokens::hash(&format!("child-{i}-{family}"))
        };
        // The fifth presents a generation its family has left: nothing to write.
        let generation = if i == 4 { generation + 7 } else { generation };
        running.spawn(async move {
            let answer = sessions::write_rotation(
                &db,
                Rotation {
                    family_id: &family,
                    parent_generation: generation,
                    parent_hash: &parent,
                    child_hash: &child,
                    child_expires_at: now + 3600,
                    now,
                },
            )
            .await;
            (i, answer.map_err(|e| e.to_string()))
        });
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    turn.rollback().await.unwrap();
    let mut answers = Vec::new();
    while let Some(done) = running.join_next().await {
        answers.push(done.unwrap());
    }
    answers.sort_by_key(|(i, _)| *i);
    for (i, answer) in &answers {
        match i {
            2 => assert!(answer.is_err(), "the colliding one fails: {answer:?}"),
            4 => assert_eq!(answer, &Ok(false), "the stale one writes nothing"),
            _ => assert_eq!(answer, &Ok(true), "rotation {i} is written"),
        }
    }
    // What was answered is what is stored: the others' families moved on, those two not.
    for (i, (family, generation, _)) in steps.iter().enumerate() {
        let (newest,): (i64,) =
            sqlx::query_as("select generation from refresh_families where id = $1")
                .bind(family)
                .fetch_one(db.pool())
                .await
                .unwrap();
        let moved = !matches!(i, 2 | 4);
        assert_eq!(newest, generation + i64::from(moved), "family {i}");
    }
    if !on_postgres() {
        // Written together: fewer transactions than rotations (the first alone, as it
        // found the queue empty; the rest in one, the failed one's again without it).
        let counts = db.rotation_queue().unwrap();
        let counts = counts.counts();
        let groups = counts.groups.load(std::sync::atomic::Ordering::Relaxed);
        let rotations = counts.rotations.load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            groups < rotations,
            "{groups} transactions for {rotations} rotations"
        );
    }
}

#[tokio::test]
async fn a_rotation_whose_caller_gave_up_is_not_written() {
    if on_postgres() {
        return; // PostgreSQL writes each rotation in its caller's own transaction.
    }
    let app = spawn_app().await;
    let signed = app.register(&unique_email()).await;
    let db = app.db.clone();
    let hash = tokens::hash(&signed.refresh_token());
    let found = sessions::find_presented(db.pool(), &hash)
        .await
        .unwrap()
        .unwrap();
    let family = found.family.id.clone();
    let generation = found.token.generation;
    let now = app.clock.now_unix();
    let turn = db.begin_write().await.unwrap();
    let waiting = {
        let (db, family, hash) = (db.clone(), family.clone(), hash.clone());
        tokio::spawn(async move {
            sessions::write_rotation(
                &db,
                Rotation {
                    family_id: &family,
                    parent_generation: generation,
                    parent_hash: &hash,
                    child_hash: &tokens::hash("a child nobody will get"),
                    child_expires_at: now + 3600,
                    now,
                },
            )
            .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    // The request is cut (its time limit): its future is dropped while it waits.
    waiting.abort();
    let _ = waiting.await;
    turn.rollback().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (newest,): (i64,) = sqlx::query_as("select generation from refresh_families where id = $1")
        .bind(&family)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(
        newest, generation,
        "nothing written for a caller who is gone"
    );
    // The token still rotates for its holder.
    app.refresh(&signed.refresh_token()).await;
}
