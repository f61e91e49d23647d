//! Hearing what other instances on the same PostgreSQL database changed: their
//! announcements (`db::changes`) evict people from this instance's cache and wake the
//! signing keys' reader.
//!
//! Announcements missed must not leave stale copies behind. So an instance also
//! announces a heartbeat to itself every half second: while its own heartbeats come back,
//! it hears the channel; when one is a second late (a connection that died without a word,
//! a stalled database backend), or the connection is lost, it empties its cache and keeps
//! entries a second only until it hears again. Either way a change made elsewhere is seen
//! here within 2 s.

use super::user_cache::UserCache;
use crate::db::{
    changes::{self, Change},
    Db,
};
use secrecy::{ExposeSecret, SecretString};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::{mpsc, Notify};

pub const HEARTBEAT_EVERY: Duration = Duration::from_millis(500);
/// A heartbeat not back within this: the channel is not heard.
pub const HEARD_WITHIN: Duration = Duration::from_millis(1000);
/// Not heard for this long: the connection is given up and made again.
const GIVE_UP_AFTER: Duration = Duration::from_secs(5);

/// Follows the announcements until the task is aborted.
pub async fn follow(db: Db, database_url: SecretString, users: Arc<UserCache>, keys: Arc<Notify>) {
    let me = uuid::Uuid::new_v4().simple().to_string();
    let mut backoff = Duration::from_millis(200);
    loop {
        match changes::listen(database_url.expose_secret()).await {
            Ok(listener) => {
                // Listening from here on: whatever changed before is read afresh.
                users.clear();
                users.set_hearing(true);
                keys.notify_one();
                backoff = Duration::from_millis(200);
                hear(&db, listener, &me, &users, &keys).await;
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for changes"),
        }
        users.set_hearing(false);
        users.clear();
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Hears the channel on `listener` until it is lost, or silent for [`GIVE_UP_AFTER`].
async fn hear(
    db: &Db,
    mut listener: sqlx::postgres::PgListener,
    me: &str,
    users: &UserCache,
    keys: &Notify,
) {
    // The listener receives in a task of its own: a receive cut short by the heartbeat's
    // timer could lose a half-read message.
    let (tx, mut rx) = mpsc::channel::<Option<String>>(256);
    let receiver = tokio::spawn(async move {
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    if tx
                        .send(Some(notification.payload().to_string()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(None) => {
                    tracing::warn!("listening for changes: connection lost");
                    let _ = tx.send(None).await;
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listening for changes failed");
                    let _ = tx.send(None).await;
                    return;
                }
            }
        }
    });
    let mut ticker = tokio::time::interval(HEARTBEAT_EVERY);
    let mut heard_at = Instant::now();
    let mut hearing = true;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let silent = heard_at.elapsed();
                if hearing && silent > HEARD_WITHIN {
                    tracing::warn!("listening for changes: own heartbeat not back, not hearing");
                    hearing = false;
                    users.set_hearing(false);
                    users.clear();
                }
                if silent > GIVE_UP_AFTER {
                    break;
                }
                let beat = Change::Beat(me.to_string());
                if let Err(e) = changes::announce(db.pool(), db.backend(), &beat).await {
                    tracing::warn!(error = %e, "heartbeat not sent");
                }
            }
            received = rx.recv() => match received.flatten() {
                None => break,
                Some(payload) => match Change::parse(&payload) {
                    Some(Change::Person(id)) => users.evict(&id),
                    Some(Change::Keys) => keys.notify_one(),
                    Some(Change::Beat(id)) if id == me => {
                        heard_at = Instant::now();
                        if !hearing {
                            // What was announced while deaf is unknown: read afresh.
                            users.clear();
                            users.set_hearing(true);
                            hearing = true;
                        }
                    }
                    Some(Change::Beat(_)) => {}
                    None => tracing::warn!(payload, "unknown change announced"),
                },
            },
        }
    }
    receiver.abort();
}
