//! Recently read people, with their live sessions, for the request guards: a request that
//! carries a cached, verified token touches no database.
//!
//! An entry lives at most `TTL_SECS`; a change made on this instance evicts it at once,
//! and one made on another instance sharing a PostgreSQL database as soon as its
//! announcement arrives (`service::changes`). While this instance cannot hear
//! announcements, entries live at most `UNHEARD_TTL_SECS`, so a change elsewhere is still
//! seen within 2 s.
//!
//! A token of a session the entry does not list is refused from memory when the token is
//! older than the entry (its session existed when the entry was read, so it has ended
//! since); only a token at least as new as the entry (its session may have started since,
//! here or on another instance) makes the person be read again. So a replayed token of an
//! ended session costs no database work.

use crate::db::{sessions, users, users::UserRow, Db};
use std::sync::{
    atomic::{AtomicI64, AtomicU64, Ordering},
    Arc, OnceLock,
};

pub const TTL_SECS: i64 = 30;
/// An entry's life while changes on other instances may go unheard.
pub const UNHEARD_TTL_SECS: i64 = 1;
/// Clocks of instances may differ by this much: a token less than this older than the
/// entry is read again rather than refused.
const CLOCK_SKEW_SECS: i64 = 5;
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
    /// Bumped by every eviction. A read that saw it move while it was loading may hold
    /// what the evicting change replaced, so it is answered but not kept.
    evictions: AtomicU64,
    /// Reads of the database, for tests and metrics.
    loads: AtomicU64,
    /// Times everyone was forgotten (`clear`), for tests and metrics.
    clears: AtomicU64,
    /// `TTL_SECS`, or `UNHEARD_TTL_SECS` while announcements may be missed.
    ttl_secs: AtomicI64,
}

impl Default for UserCache {
    fn default() -> Self {
        UserCache::new()
    }
}

impl UserCache {
    pub fn new() -> UserCache {
        UserCache {
            entries: quick_cache::sync::Cache::new(ENTRIES),
            evictions: AtomicU64::new(0),
            loads: AtomicU64::new(0),
            clears: AtomicU64::new(0),
            ttl_secs: AtomicI64::new(TTL_SECS),
        }
    }

    /// Whether changes made on other instances reach this one (their announcements are
    /// heard): entries then live `TTL_SECS`, else `UNHEARD_TTL_SECS`.
    pub fn set_hearing(&self, hearing: bool) {
        let ttl = if hearing { TTL_SECS } else { UNHEARD_TTL_SECS };
        self.ttl_secs.store(ttl, Ordering::SeqCst);
    }

    /// Forgets everyone: changes may have gone unheard.
    pub fn clear(&self) {
        self.evictions.fetch_add(1, Ordering::SeqCst);
        self.clears.fetch_add(1, Ordering::Relaxed);
        self.entries.clear();
    }

    /// The person, if they exist, as far as a token of `session_id` issued at `issued_at`
    /// is concerned: from memory when read less than `TTL_SECS` ago and the entry settles
    /// the session, else from the database.
    pub async fn get(
        &self,
        db: &Db,
        id: &str,
        session_id: &str,
        issued_at: i64,
        now: i64,
    ) -> Result<Option<CachedUser>, sqlx::Error> {
        if let Some((fetched_at, cached)) = self.entries.get(id) {
            let ttl = self.ttl_secs.load(Ordering::SeqCst);
            let fresh = (fetched_at..fetched_at + ttl).contains(&now);
            let older_than_entry = issued_at + CLOCK_SKEW_SECS < fetched_at;
            if fresh && (cached.has_session(session_id) || older_than_entry) {
                return Ok(Some(cached));
            }
        }
        let evictions = self.evictions.load(Ordering::SeqCst);
        self.loads.fetch_add(1, Ordering::Relaxed);
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
        if self.evictions.load(Ordering::SeqCst) == evictions {
            self.entries.insert(id.to_string(), (now, cached.clone()));
        }
        Ok(Some(cached))
    }

    /// Forgets a person after a change on this instance (call it after the commit).
    pub fn evict(&self, id: &str) {
        self.evictions.fetch_add(1, Ordering::SeqCst);
        self.entries.remove(id);
    }

    /// How many times a person was read from the database.
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    /// How many times someone or everyone was forgotten (`evict` and `clear`).
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::SeqCst)
    }

    /// How many times everyone was forgotten at once.
    pub fn clears(&self) -> u64 {
        self.clears.load(Ordering::Relaxed)
    }
}
