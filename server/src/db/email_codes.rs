//! The `email_codes` table: one pending verification code a person.

use sqlx::{Any, Executor, Row};

/// A pending code as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeRow {
    pub digest: String,
    pub expires_at: i64,
    pub attempts: i64,
    pub day_started: i64,
    pub day_attempts: i64,
}

/// Stores a new code for the person, replacing an earlier one sent at or before
/// `sent_before` (its tries start again; the day's do not). False when the earlier one is
/// more recent: nothing was stored. Decided in one statement, so parallel requests cannot
/// both send a code.
pub async fn replace<'e>(
    db: impl Executor<'e, Database = Any>,
    user_id: &str,
    digest: &str,
    expires_at: i64,
    now: i64,
    sent_before: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "insert into email_codes (user_id, code_digest, expires_at, attempts, sent_at, day_started) \
         values ($1, $2, $3, 0, $4, $4) \
         on conflict (user_id) do update set code_digest = excluded.code_digest, \
         expires_at = excluded.expires_at, attempts = 0, sent_at = excluded.sent_at \
         where email_codes.sent_at <= $5",
    )
    .bind(user_id)
    .bind(digest)
    .bind(expires_at)
    .bind(now)
    .bind(sent_before)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Counts one try against the person's code and returns the code as it now stands; the
/// count is made in the same statement, so parallel guesses cannot exceed the limit.
pub async fn count_attempt<'e>(
    db: impl Executor<'e, Database = Any>,
    user_id: &str,
    now: i64,
    day_secs: i64,
) -> Result<Option<CodeRow>, sqlx::Error> {
    let row = sqlx::query(
        "update email_codes set attempts = attempts + 1, \
         day_attempts = case when day_started + $3 <= $2 then 1 else day_attempts + 1 end, \
         day_started = case when day_started + $3 <= $2 then $2 else day_started end \
         where user_id = $1 \
         returning code_digest, expires_at, attempts, day_started, day_attempts",
    )
    .bind(user_id)
    .bind(now)
    .bind(day_secs)
    .fetch_optional(db)
    .await?;
    row.map(|r| {
        Ok(CodeRow {
            digest: r.try_get("code_digest")?,
            expires_at: r.try_get("expires_at")?,
            attempts: r.try_get("attempts")?,
            day_started: r.try_get("day_started")?,
            day_attempts: r.try_get("day_attempts")?,
        })
    })
    .transpose()
}

/// When the person's current code was sent, if one is pending.
pub async fn sent_at<'e>(
    db: impl Executor<'e, Database = Any>,
    user_id: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("select sent_at from email_codes where user_id = $1")
        .bind(user_id)
        .fetch_optional(db)
        .await
}

pub async fn delete<'e>(
    db: impl Executor<'e, Database = Any>,
    user_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("delete from email_codes where user_id = $1")
        .bind(user_id)
        .execute(db)
        .await
        .map(|_| ())
}

/// Deletes codes that expired before `before`.
pub async fn prune<'e>(
    db: impl Executor<'e, Database = Any>,
    before: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("delete from email_codes where expires_at <= $1")
        .bind(before)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}
