//! Changes announced to every instance on one PostgreSQL database (`LISTEN`/`NOTIFY` on
//! one channel): a person whose access changed, or a new signing key. SQLite serves one
//! instance, which needs no announcement.

use super::{Backend, Db};
use sqlx::postgres::PgListener;

pub const CHANNEL: &str = "jwt_auth_changes";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The person's sessions, status, role or password changed: cached copies are stale.
    Person(String),
    /// A signing key was added.
    Keys,
}

impl Change {
    fn payload(&self) -> String {
        match self {
            Change::Person(id) => format!("person:{id}"),
            Change::Keys => "keys".to_string(),
        }
    }

    pub fn parse(payload: &str) -> Option<Change> {
        match payload.split_once(':') {
            Some(("person", id)) if !id.is_empty() => Some(Change::Person(id.to_string())),
            None if payload == "keys" => Some(Change::Keys),
            _ => None,
        }
    }
}

/// Tells every instance listening (this one included) of `change`, once committed.
pub async fn announce(db: &Db, change: &Change) -> Result<(), sqlx::Error> {
    if db.backend() != Backend::Postgres {
        return Ok(());
    }
    sqlx::query("select pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(change.payload())
        .execute(db.pool())
        .await
        .map(|_| ())
}

/// A connection of its own, listening on the channel.
pub async fn listen(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_read_back() {
        for change in [Change::Person("a-b-c".into()), Change::Keys] {
            assert_eq!(Change::parse(&change.payload()), Some(change));
        }
        for junk in ["", "person:", "people:x", "keys:1", "other"] {
            assert_eq!(Change::parse(junk), None, "{junk}");
        }
    }
}
