//! The `passkeys` and `webauthn_ceremonies` tables.

use super::is_unique_violation;
use sqlx::{Any, Executor, FromRow};

#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct PasskeyRow {
    pub id: String,
    pub user_id: String,
    pub credential_id: String,
    pub name: String,
    pub passkey: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

const COLUMNS: &str = "id, user_id, credential_id, name, passkey, created_at, last_used_at";

pub struct NewPasskey<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub credential_id: &'a str,
    pub name: &'a str,
    pub passkey: &'a str,
    pub now: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum InsertPasskeyError {
    /// That credential is registered already (to this account or another).
    #[error("credential already registered")]
    Taken,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

pub async fn insert<'e>(
    db: impl Executor<'e, Database = Any>,
    passkey: NewPasskey<'_>,
) -> Result<(), InsertPasskeyError> {
    sqlx::query(
        "insert into passkeys (id, user_id, credential_id, name, passkey, created_at) \
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(passkey.id)
    .bind(passkey.user_id)
    .bind(passkey.credential_id)
    .bind(passkey.name)
    .bind(passkey.passkey)
    .bind(passkey.now)
    .execute(db)
    .await
    .map(|_| ())
    .map_err(|e| {
        if is_unique_violation(&e, "passkeys_credential_id_key") {
            InsertPasskeyError::Taken
        } else {
            InsertPasskeyError::Db(e)
        }
    })
}

/// The person's passkeys, oldest first.
pub async fn of_user<'e>(
    db: impl Executor<'e, Database = Any>,
    user_id: &str,
) -> Result<Vec<PasskeyRow>, sqlx::Error> {
    sqlx::query_as::<_, PasskeyRow>(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from passkeys where user_id = $1 order by created_at, id"
    )))
    .bind(user_id)
    .fetch_all(db)
    .await
}

/// Whether `user_id` has a passkey.
pub async fn has_any<'e>(
    db: impl Executor<'e, Database = Any>,
    user_id: &str,
) -> Result<bool, sqlx::Error> {
    let (count,): (i64,) = sqlx::query_as("select count(*) from passkeys where user_id = $1")
        .bind(user_id)
        .fetch_one(db)
        .await?;
    Ok(count > 0)
}

/// The passkey `credential_id` of `user_id` (a sign-in names both: the credential, and the
/// person in its user handle).
pub async fn find<'e>(
    db: impl Executor<'e, Database = Any>,
    user_id: &str,
    credential_id: &str,
) -> Result<Option<PasskeyRow>, sqlx::Error> {
    sqlx::query_as::<_, PasskeyRow>(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from passkeys where user_id = $1 and credential_id = $2"
    )))
    .bind(user_id)
    .bind(credential_id)
    .fetch_optional(db)
    .await
}

/// Records a sign-in with the passkey, and its new counter and flags (`passkey`, when they
/// changed).
pub async fn used<'e>(
    db: impl Executor<'e, Database = Any>,
    id: &str,
    passkey: Option<&str>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update passkeys set last_used_at = $2, passkey = coalesce($3, passkey) where id = $1",
    )
    .bind(id)
    .bind(now)
    .bind(passkey)
    .execute(db)
    .await
    .map(|_| ())
}

/// Removes `user_id`'s passkey `id`; false when they have none of that id.
pub async fn delete<'e>(
    db: impl Executor<'e, Database = Any>,
    user_id: &str,
    id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("delete from passkeys where id = $1 and user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub struct NewCeremony<'a> {
    pub challenge: &'a str,
    pub kind: &'a str,
    pub user_id: Option<&'a str>,
    pub name: Option<&'a str>,
    pub state: &'a str,
    pub expires_at: i64,
}

pub async fn create_ceremony<'e>(
    db: impl Executor<'e, Database = Any>,
    ceremony: NewCeremony<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into webauthn_ceremonies (challenge, kind, user_id, name, state, expires_at) \
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(ceremony.challenge)
    .bind(ceremony.kind)
    .bind(ceremony.user_id)
    .bind(ceremony.name)
    .bind(ceremony.state)
    .bind(ceremony.expires_at)
    .execute(db)
    .await
    .map(|_| ())
}

#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct CeremonyRow {
    pub user_id: Option<String>,
    pub name: Option<String>,
    pub state: String,
    pub expires_at: i64,
}

/// Takes the ceremony of `challenge` and `kind` out (once only: a second answer with the
/// same challenge finds nothing), if it has not expired.
pub async fn take_ceremony<'e>(
    db: impl Executor<'e, Database = Any>,
    challenge: &str,
    kind: &str,
    now: i64,
) -> Result<Option<CeremonyRow>, sqlx::Error> {
    let row = sqlx::query_as::<_, CeremonyRow>(
        "delete from webauthn_ceremonies where challenge = $1 and kind = $2 \
         returning user_id, name, state, expires_at",
    )
    .bind(challenge)
    .bind(kind)
    .fetch_optional(db)
    .await?;
    Ok(row.filter(|r| r.expires_at > now))
}

pub async fn prune_ceremonies<'e>(
    db: impl Executor<'e, Database = Any>,
    before: i64,
) -> Result<u64, sqlx::Error> {
    sqlx::query("delete from webauthn_ceremonies where expires_at < $1")
        .bind(before)
        .execute(db)
        .await
        .map(|r| r.rows_affected())
}
