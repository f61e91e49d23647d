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
pub enum Link {
    /// Unused and within its lifetime: its person.
    Live {
        user_id: String,
    },
    Expired,
    /// Unknown, or used before.
    Invalid,
}

/// The state of a link, changing nothing: lets a reset refuse a bad token before it
/// spends a password hash on it.
pub async fn find<'e>(
    db: impl Executor<'e, Database = Any>,
    token_hash: &str,
    now: i64,
) -> Result<Link, sqlx::Error> {
    let row = sqlx::query(
        "select user_id, expires_at, used_at from password_resets where token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else {
        return Ok(Link::Invalid);
    };
    Ok(if row.try_get::<Option<i64>, _>("used_at")?.is_some() {
        Link::Invalid
    } else if row.try_get::<i64, _>("expires_at")? <= now {
        Link::Expired
    } else {
        Link::Live {
            user_id: row.try_get("user_id")?,
        }
    })
}

/// Uses the token up in one statement, so two parallel resets cannot both succeed.
pub async fn claim(
    conn: &mut AnyConnection,
    token_hash: &str,
    now: i64,
) -> Result<Link, sqlx::Error> {
    let claimed: Option<String> = sqlx::query_scalar(
        "update password_resets set used_at = $1 \
         where token_hash = $2 and used_at is null and expires_at > $1 returning user_id",
    )
    .bind(now)
    .bind(token_hash)
    .fetch_optional(&mut *conn)
    .await?;
    match claimed {
        Some(user_id) => Ok(Link::Live { user_id }),
        None => find(&mut *conn, token_hash, now).await,
    }
}

/// Makes a link claimed at `claimed_at` usable again (its reset could not be carried out).
pub async fn release<'e>(
    db: impl Executor<'e, Database = Any>,
    token_hash: &str,
    claimed_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("update password_resets set used_at = null where token_hash = $1 and used_at = $2")
        .bind(token_hash)
        .bind(claimed_at)
        .execute(db)
        .await
        .map(|_| ())
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
