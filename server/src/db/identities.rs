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

/// Whether `user_id` has an identity of `provider` already.
pub async fn has_provider<'e>(
    db: impl Executor<'e, Database = Any>,
    user_id: &str,
    provider: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar::<_, i64>(
        "select count(*) from identities where user_id = $1 and provider = $2",
    )
    .bind(user_id)
    .bind(provider)
    .fetch_one(db)
    .await
    .map(|n| n > 0)
}

/// Unlinks every identity of `user_id`; how many.
pub async fn delete_all_of_user<'e>(
    db: impl Executor<'e, Database = Any>,
    user_id: &str,
) -> Result<u64, sqlx::Error> {
    sqlx::query("delete from identities where user_id = $1")
        .bind(user_id)
        .execute(db)
        .await
        .map(|r| r.rows_affected())
}

/// The person's linked identities, oldest first.
pub async fn list_for_user<'e>(
    db: impl Executor<'e, Database = Any>,
    user_id: &str,
) -> Result<Vec<IdentityRow>, sqlx::Error> {
    sqlx::query_as::<_, IdentityRow>(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from identities where user_id = $1 order by linked_at, provider"
    )))
    .bind(user_id)
    .fetch_all(db)
    .await
}

/// Unlinks the person's identity at `provider`; `false` when there was none.
pub async fn delete<'e>(
    db: impl Executor<'e, Database = Any>,
    user_id: &str,
    provider: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query("delete from identities where user_id = $1 and provider = $2")
        .bind(user_id)
        .bind(provider)
        .execute(db)
        .await
        .map(|r| r.rows_affected() > 0)
}
