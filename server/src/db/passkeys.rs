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
    /// The session that registers it: the passkey is kept only while it is live.
    pub session_id: &'a str,
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
    /// The registering session ended meanwhile (signed out, or every session of the
    /// person ended, as when the owner of an unproven address proves it).
    #[error("the registering session ended")]
    SessionEnded,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Keeps a new passkey, in the same statement that checks its registering session is still
/// live: a session ended by a change that removes the person's passkeys (committed first)
/// adds none after it.
pub async fn insert<'e>(
    db: impl Executor<'e, Database = Any>,
    passkey: NewPasskey<'_>,
) -> Result<(), InsertPasskeyError> {
    let done = sqlx::query(
        "insert into passkeys (id, user_id, credential_id, name, passkey, created_at) \
         select $1, $2, $3, $4, $5, $6 \
         where exists (select 1 from refresh_families \
                       where id = $7 and user_id = $2 and revoked_at is null \
                         and expires_at > $6 and idle_expires_at > $6)",
    )
    .bind(passkey.id)
    .bind(passkey.user_id)
    .bind(passkey.credential_id)
    .bind(passkey.name)
    .bind(passkey.passkey)
    .bind(passkey.now)
    .bind(passkey.session_id)
    .execute(db)
    .await
    .map_err(|e| {
        if is_unique_violation(&e, "passkeys_credential_id_key") {
            InsertPasskeyError::Taken
        } else {
            InsertPasskeyError::Db(e)
        }
    })?;
    if done.rows_affected() == 0 {
        return Err(InsertPasskeyError::SessionEnded);
    }
    Ok(())
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

/// Records a sign-in with the passkey: its state `checked` (the counter the sign-in was
/// checked against) becomes `updated` (the new counter and flags). False when the passkey
/// changed meanwhile (another sign-in moved its counter on, or it was removed): then the
/// check was against a stale counter, and the sign-in must be refused.
pub async fn used<'e>(
    db: impl Executor<'e, Database = Any>,
    id: &str,
    checked: &str,
    updated: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update passkeys set last_used_at = $2, passkey = $3 where id = $1 and passkey = $4",
    )
    .bind(id)
    .bind(now)
    .bind(updated)
    .bind(checked)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
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

/// Removes every passkey of `user_id`, and their registrations in progress.
pub async fn delete_all_of_user(
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("delete from passkeys where user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("delete from webauthn_ceremonies where user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
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

/// Removes the ceremonies of `kind` that `user_id` began and has not finished.
pub async fn delete_waiting_ceremonies<'e>(
    db: impl Executor<'e, Database = Any>,
    kind: &str,
    user_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("delete from webauthn_ceremonies where kind = $1 and user_id = $2")
        .bind(kind)
        .bind(user_id)
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

/// Whether a ceremony of `challenge` and `kind` (begun by `user_id`) waits, unexpired: a
/// read, so an answer to no ceremony is refused without taking a write turn.
pub async fn ceremony_waits<'e>(
    db: impl Executor<'e, Database = Any>,
    challenge: &str,
    kind: &str,
    user_id: Option<&str>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let (count,): (i64,) = sqlx::query_as(
        "select count(*) from webauthn_ceremonies \
         where challenge = $1 and kind = $2 \
           and (user_id = $3 or (user_id is null and $3 is null)) and expires_at > $4",
    )
    .bind(challenge)
    .bind(kind)
    .bind(user_id)
    .bind(now)
    .fetch_one(db)
    .await?;
    Ok(count > 0)
}

/// Takes the ceremony of `challenge` and `kind` out (once only: a second answer with the
/// same challenge finds nothing), if it has not expired. A registration is taken only by
/// the person who began it (`user_id`); a sign-in's has none.
pub async fn take_ceremony<'e>(
    db: impl Executor<'e, Database = Any>,
    challenge: &str,
    kind: &str,
    user_id: Option<&str>,
    now: i64,
) -> Result<Option<CeremonyRow>, sqlx::Error> {
    let row = sqlx::query_as::<_, CeremonyRow>(
        "delete from webauthn_ceremonies \
         where challenge = $1 and kind = $2 \
           and (user_id = $3 or (user_id is null and $3 is null)) \
         returning user_id, name, state, expires_at",
    )
    .bind(challenge)
    .bind(kind)
    .bind(user_id)
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
