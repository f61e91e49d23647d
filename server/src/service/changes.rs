//! Hearing what other instances on the same PostgreSQL database changed: their
//! announcements (`db::changes`) evict people from this instance's cache and wake the
//! signing keys' reader. When the listening connection is lost, announcements may have
//! been missed: the cache is emptied and keeps entries a second only, until listening
//! again, so a change elsewhere is still seen here within 2 s.

use super::user_cache::UserCache;
use crate::db::changes::{self, Change};
use secrecy::{ExposeSecret, SecretString};
use std::{sync::Arc, time::Duration};
use tokio::sync::Notify;

/// Follows the announcements until the task is aborted.
pub async fn follow(database_url: SecretString, users: Arc<UserCache>, keys: Arc<Notify>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match changes::listen(database_url.expose_secret()).await {
            Ok(mut listener) => {
                // Listening from here on: whatever changed before is read afresh.
                users.clear();
                users.set_hearing(true);
                keys.notify_one();
                backoff = Duration::from_millis(200);
                loop {
                    match listener.try_recv().await {
                        Ok(Some(notification)) => match Change::parse(notification.payload()) {
                            Some(Change::Person(id)) => users.evict(&id),
                            Some(Change::Keys) => keys.notify_one(),
                            None => tracing::warn!(
                                payload = notification.payload(),
                                "unknown change announced"
                            ),
                        },
                        // Lost and listening again: what was announced meanwhile is unknown.
                        Ok(None) => {
                            tracing::warn!("listening for changes: connection lost, back");
                            users.clear();
                            keys.notify_one();
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "listening for changes failed");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for changes"),
        }
        users.set_hearing(false);
        users.clear();
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
