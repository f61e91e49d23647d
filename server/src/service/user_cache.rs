//! Recently read people, with their live sessions, for the request guards: a request that
//! carries a cached, verified token touches no database.
//!
//! An entry lives at most `TTL_SECS`; a change made on this instance evicts it at once.
//! Changes made on another instance are therefore seen here within `TTL_SECS`. A token of
//! a session the entry does not list (one started since, perhaps on another instance)
//! reads the person again before it is refused, so only ended sessions are refused.

use crate::db::{sessions, users, users::UserRow, Db};
use std::sync::{Arc, OnceLock};

pub const TTL_SECS: i64 = 30;
const ENTRIES: usize = 16_384;

/// A person as the guards see them.
#[derive(Clone, Debug)]
pub struct CachedUser {
    pub row: Arc<UserRow>,
    /// Ids of the sessions (refresh families) that may still refresh.
    pub live_sessions: Arc<[String]>,
    /// The route's rendering of the person (the `User` JSON of `GET /api/me`), made once
    /// per entry by whoever needs it first.
    pub rendered: Arc<OnceLock<bytes::Bytes>>,
}

impl CachedUser {
    pub fn has_session(&self, session_id: &str) -> bool {
        self.live_sessions.iter().any(|s| s == session_id)
    }
}

pub struct UserCache {
    entries: quick_cache::sync::Cache<String, (i64, CachedUser)>,
}

impl Default for UserCache {
    fn default() -> Self {
        UserCache {
            entries: quick_cache::sync::Cache::new(ENTRIES),
        }
    }
}

impl UserCache {
    /// The person, if they exist, as they are now as far as `session_id` is concerned:
    /// from memory when read less than `TTL_SECS` ago and the entry lists the session,
    /// else from the database.
    pub async fn get(
        &self,
        db: &Db,
        id: &str,
        session_id: &str,
        now: i64,
    ) -> Result<Option<CachedUser>, sqlx::Error> {
        if let Some((fetched_at, cached)) = self.entries.get(id) {
            if (fetched_at..fetched_at + TTL_SECS).contains(&now) && cached.has_session(session_id)
            {
                return Ok(Some(cached));
            }
        }
        let Some(row) = users::find_by_id(db.pool(), id).await? else {
            self.entries.remove(id);
            return Ok(None);
        };
        let live = sessions::live_ids_for_user(db.pool(), id, now).await?;
        let cached = CachedUser {
            row: Arc::new(row),
            live_sessions: live.into(),
            rendered: Arc::default(),
        };
        self.entries.insert(id.to_string(), (now, cached.clone()));
        Ok(Some(cached))
    }

    /// Forgets a person after a change on this instance.
    pub fn evict(&self, id: &str) {
        self.entries.remove(id);
    }
}
