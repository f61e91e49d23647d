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
                crate::db::reachable(true);
                // Listening from here on: whatever changed before is read afresh.
                users.clear();
                users.set_hearing(true);
                keys.notify_one();
                // The pause before the next try grows until a connection proves itself:
                // one that is lost at once, or never hears, is not retried in a tight loop.
                if hear(&db, listener, &me, &users, &keys).await {
                    backoff = Duration::from_millis(200);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for changes");
                // A connection of its own that cannot be made: the database is out of
                // reach, and requests waiting for one are told so (`db::seems_reachable`).
                crate::db::reachable(false);
            }
        }
        users.set_hearing(false);
        users.clear();
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Hears the channel on `listener` until it is lost, or silent for [`GIVE_UP_AFTER`];
/// says whether its own heartbeat ever came back.
async fn hear(
    db: &Db,
    mut listener: sqlx::postgres::PgListener,
    me: &str,
    users: &Arc<UserCache>,
    keys: &Arc<Notify>,
) -> bool {
    // The listener receives in a task of its own, so a receive is never cut short (it
    // could lose a half-read message); evictions are applied there, the moment they
    // arrive, whatever this loop is doing. It ends with this function (`_receiver`).
    let (beats, mut heard) = mpsc::channel::<()>(16);
    let (lost_tx, mut lost) = mpsc::channel::<()>(1);
    let receiver = {
        let me = me.to_string();
        let users = users.clone();
        let keys = keys.clone();
        tokio::spawn(async move {
            loop {
                let payload = match listener.try_recv().await {
                    Ok(Some(notification)) => notification.payload().to_string(),
                    Ok(None) => {
                        tracing::warn!("listening for changes: connection lost");
                        crate::db::reachable(false);
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "listening for changes failed");
                        crate::db::reachable(false);
                        break;
                    }
                };
                match Change::parse(&payload) {
                    Some(Change::Person(id)) => users.evict(&id),
                    Some(Change::Keys) => keys.notify_one(),
                    Some(Change::Beat(id)) if id == me => {
                        let _ = beats.try_send(());
                    }
                    Some(Change::Beat(_)) => {}
                    None => tracing::warn!(payload, "unknown change announced"),
                }
            }
            let _ = lost_tx.try_send(());
        })
    };
    let _receiver = AbortOnDrop(receiver);
    let mut ticker = tokio::time::interval(HEARTBEAT_EVERY);
    let mut heard_at = Instant::now();
    let mut hearing = true;
    let mut ever_heard = false;
    loop {
        tokio::select! {
            // Whatever arrived is taken before the silence is judged.
            biased;
            _ = lost.recv() => break,
            Some(()) = heard.recv() => {
                heard_at = Instant::now();
                ever_heard = true;
                if !hearing {
                    // What was announced while deaf is unknown: read afresh.
                    users.clear();
                    users.set_hearing(true);
                    hearing = true;
                }
            }
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
                // Sent on the side: a send waiting for a pooled connection holds up
                // nothing here (and, not coming back in time, counts as silence).
                let db = db.clone();
                let beat = Change::Beat(me.to_string());
                tokio::spawn(async move {
                    if let Err(e) = changes::announce(db.pool(), db.backend(), &beat).await {
                        tracing::warn!(error = %e, "heartbeat not sent");
                    }
                });
            }
        }
    }
    ever_heard
}

/// Ends a task when dropped: the receiver, when its listener is given up or this instance
/// shuts down.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
