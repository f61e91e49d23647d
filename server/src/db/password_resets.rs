//! The `password_resets` table: single-use reset links, stored as hashes.

use sqlx::{Any, AnyConnection, Executor, Row};

pub async fn insert<'e>(
    db: impl Executor<'e, Database = Any>,
    token_hash: &str,
    user_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into password_resets (token_hash, user_id, created_at, expires_at) \
         values ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(now)
    .bind(expires_at)
    .execute(db)
    .await
    .map(|_| ())
}

/// What presenting a reset token found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The token was live and is now used up: its person.
    Claimed {
        user_id: String,
    },
    Expired,
    /// Unknown, or used before.
    Invalid,
}

/// Uses the token up in one statement, so two parallel resets cannot both succeed.
pub async fn claim(
    conn: &mut AnyConnection,
    token_hash: &str,
    now: i64,
) -> Result<Claim, sqlx::Error> {
    let claimed: Option<String> = sqlx::query_scalar(
        "update password_resets set used_at = $1 \
         where token_hash = $2 and used_at is null and expires_at > $1 returning user_id",
    )
    .bind(now)
    .bind(token_hash)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(user_id) = claimed {
        return Ok(Claim::Claimed { user_id });
    }
    let row = sqlx::query("select used_at from password_resets where token_hash = $1")
        .bind(token_hash)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        Some(r) if r.try_get::<Option<i64>, _>("used_at")?.is_none() => Claim::Expired,
        _ => Claim::Invalid,
    })
}

/// Ends every link of the person (after a reset, or when an admin disables them).
pub async fn delete_for_user<'e>(
    db: impl Executor<'e, Database = Any>,
    user_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("delete from password_resets where user_id = $1")
        .bind(user_id)
        .execute(db)
        .await
        .map(|_| ())
}

/// Deletes links that expired at or before `before`, used or not.
pub async fn prune<'e>(
    db: impl Executor<'e, Database = Any>,
    before: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("delete from password_resets where expires_at <= $1")
        .bind(before)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}
