//! The `signing_keys` table: the access tokens' keys, private halves sealed.

use sqlx::{Any, Executor, FromRow};

#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct SigningKeyRow {
    pub kid: String,
    pub public_key: String,
    pub sealed_private_key: String,
    pub created_at: i64,
    pub signs_from: i64,
}

/// Every key, retired ones included (`server keys list` shows them).
pub async fn list<'e>(
    db: impl Executor<'e, Database = Any>,
) -> Result<Vec<SigningKeyRow>, sqlx::Error> {
    sqlx::query_as::<_, SigningKeyRow>(
        "select kid, public_key, sealed_private_key, created_at, signs_from from signing_keys \
         order by signs_from, kid",
    )
    .fetch_all(db)
    .await
}

/// What changed since a list: the keys and their times, without the sealed halves.
pub async fn versions<'e>(
    db: impl Executor<'e, Database = Any>,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as::<_, (String, i64)>(
        "select kid, signs_from from signing_keys order by signs_from, kid",
    )
    .fetch_all(db)
    .await
}

pub async fn insert<'e>(
    db: impl Executor<'e, Database = Any>,
    key: &SigningKeyRow,
) -> Result<(), sqlx::Error> {
    insert_with(db, key, "").await
}

/// The first key, unless a key of that `kid` is there already: two instances starting at
/// once on an empty database may import the same key file.
pub async fn insert_first<'e>(
    db: impl Executor<'e, Database = Any>,
    key: &SigningKeyRow,
) -> Result<(), sqlx::Error> {
    insert_with(db, key, " on conflict (kid) do nothing").await
}

async fn insert_with<'e>(
    db: impl Executor<'e, Database = Any>,
    key: &SigningKeyRow,
    on_conflict: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "insert into signing_keys (kid, public_key, sealed_private_key, created_at, signs_from) \
         values ($1, $2, $3, $4, $5){on_conflict}"
    )))
    .bind(&key.kid)
    .bind(&key.public_key)
    .bind(&key.sealed_private_key)
    .bind(key.created_at)
    .bind(key.signs_from)
    .execute(db)
    .await
    .map(|_| ())
}

/// Holds the table until the transaction ends (PostgreSQL; a SQLite write transaction
/// holds the whole database already): two instances starting at once on an empty database
/// import one key file, not one each.
pub async fn hold_for_import(tx: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    if tx.backend_name() == "PostgreSQL" {
        sqlx::query("lock table signing_keys in exclusive mode")
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

pub async fn count<'e>(db: impl Executor<'e, Database = Any>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar::<_, i64>("select count(*) from signing_keys")
        .fetch_one(db)
        .await
}
