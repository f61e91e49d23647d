//! Recently read user rows for the hot path of authenticated reads (`GET /api/me`), so a
//! request that carries a cached, verified token touches no database.
//!
//! An entry lives at most `TTL_SECS`; a change made on this instance evicts it at once.
//! Changes made on another instance are therefore seen here within `TTL_SECS`.

use crate::db::{users, users::UserRow, Db};
use std::sync::Arc;

pub const TTL_SECS: i64 = 30;
const ENTRIES: usize = 16_384;

/// A row and its contract `User` JSON, rendered once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedUser {
    pub row: Arc<UserRow>,
    pub json: axum::body::Bytes,
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
    /// The user, from memory when read less than `TTL_SECS` ago, else from the database.
    pub async fn get(
        &self,
        db: &Db,
        id: &str,
        now: i64,
    ) -> Result<Option<CachedUser>, sqlx::Error> {
        if let Some((fetched_at, cached)) = self.entries.get(id) {
            if (fetched_at..fetched_at + TTL_SECS).contains(&now) {
                return Ok(Some(cached));
            }
        }
        let Some(row) = users::find_by_id(db.pool(), id).await? else {
            self.entries.remove(id);
            return Ok(None);
        };
        let json = serde_json::to_vec(&row.to_api()).map_err(|e| sqlx::Error::Decode(e.into()))?;
        let cached = CachedUser {
            row: Arc::new(row),
            json: json.into(),
        };
        self.entries.insert(id.to_string(), (now, cached.clone()));
        Ok(Some(cached))
    }

    /// Forgets a user after a change on this instance.
    pub fn evict(&self, id: &str) {
        self.entries.remove(id);
    }
}
