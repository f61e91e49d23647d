//! Changes announced to every instance on one PostgreSQL database (`LISTEN`/`NOTIFY` on
//! one channel): a person whose access changed, or a new signing key. SQLite serves one
//! instance, which needs no announcement.

use super::Backend;
use sqlx::{postgres::PgListener, Any, Executor};

pub const CHANNEL: &str = "jwt_auth_changes";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The person's sessions, status, role or password changed: cached copies are stale.
    Person(String),
    /// A signing key was added.
    Keys,
    /// An instance's heartbeat, to itself: that it still hears the channel.
    Beat(String),
}

impl Change {
    fn payload(&self) -> String {
        match self {
            Change::Person(id) => format!("person:{id}"),
            Change::Keys => "keys".to_string(),
            Change::Beat(id) => format!("beat:{id}"),
        }
    }

    pub fn parse(payload: &str) -> Option<Change> {
        match payload.split_once(':') {
            Some(("person", id)) if !id.is_empty() => Some(Change::Person(id.to_string())),
            Some(("beat", id)) if !id.is_empty() => Some(Change::Beat(id.to_string())),
            None if payload == "keys" => Some(Change::Keys),
            _ => None,
        }
    }
}

/// Tells every instance listening (this one included) of `change`. In a transaction,
/// PostgreSQL delivers it when, and only if, the transaction commits: a change is never
/// committed unannounced, whatever happens to the request after.
pub async fn announce<'e>(
    db: impl Executor<'e, Database = Any>,
    backend: Backend,
    change: &Change,
) -> Result<(), sqlx::Error> {
    if backend != Backend::Postgres {
        return Ok(());
    }
    sqlx::query("select pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(change.payload())
        .execute(db)
        .await
        .map(|_| ())
}

/// A connection of its own, listening on the channel. A lost connection is reported
/// (`try_recv` answers `None`) before any attempt to connect again.
pub async fn listen(url: &str) -> Result<PgListener, sqlx::Error> {
    // `PgListener::connect` would wait 30 s for a database that refuses connections;
    // within 2 s the follower knows, and says so (`db::reachable`).
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(2))
        .max_lifetime(None)
        .idle_timeout(None)
        .connect(url)
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_read_back() {
        for change in [
            Change::Person("a-b-c".into()),
            Change::Keys,
            Change::Beat("x".into()),
        ] {
            assert_eq!(Change::parse(&change.payload()), Some(change));
        }
        for junk in ["", "person:", "people:x", "keys:1", "beat:", "other"] {
            assert_eq!(Change::parse(junk), None, "{junk}");
        }
    }
}
