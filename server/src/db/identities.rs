//! The `identities` table: accounts at identity providers, each linked to one of ours.

use super::is_unique_violation;
use sqlx::{Any, Executor, FromRow};

#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct IdentityRow {
    pub provider: String,
    pub subject: String,
    pub user_id: String,
    pub email: String,
    pub linked_at: i64,
}

pub struct NewIdentity<'a> {
    pub provider: &'a str,
    pub subject: &'a str,
    pub user_id: &'a str,
    pub email: &'a str,
    pub now: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// That identity is linked already (to any account), or the account has one of that
    /// provider: a concurrent request got there first.
    #[error("identity already linked")]
    Taken,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

const COLUMNS: &str = "provider, subject, user_id, email, linked_at";

pub async fn find<'e>(
    db: impl Executor<'e, Database = Any>,
    provider: &str,
    subject: &str,
) -> Result<Option<IdentityRow>, sqlx::Error> {
    sqlx::query_as::<_, IdentityRow>(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from identities where provider = $1 and subject = $2"
    )))
    .bind(provider)
    .bind(subject)
    .fetch_optional(db)
    .await
}

pub async fn insert<'e>(
    db: impl Executor<'e, Database = Any>,
    identity: NewIdentity<'_>,
) -> Result<(), LinkError> {
    sqlx::query(
        "insert into identities (provider, subject, user_id, email, linked_at) \
         values ($1, $2, $3, $4, $5)",
    )
    .bind(identity.provider)
    .bind(identity.subject)
    .bind(identity.user_id)
    .bind(identity.email)
    .bind(identity.now)
    .execute(db)
    .await
    .map(|_| ())
    .map_err(|e| {
        if is_unique_violation(&e, "identities_pkey")
            || is_unique_violation(&e, "identities_user_provider_key")
        {
            LinkError::Taken
        } else {
            LinkError::Db(e)
        }
    })
}
