//! The `users` table.

use super::is_unique_violation;
pub use api::Role;
use sqlx::{any::AnyRow, Any, Executor, FromRow, Row};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub role: Role,
    pub email_verified: bool,
    pub active: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl FromRow<'_, AnyRow> for UserRow {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(UserRow {
            id: row.try_get("id")?,
            email: row.try_get("email")?,
            name: row.try_get("name")?,
            password_hash: row.try_get("password_hash")?,
            role: decode_role(&row.try_get::<String, _>("role")?)?,
            // Flags are 0/1 integers: sqlx's Any driver cannot decode SQLite booleans.
            email_verified: row.try_get::<i64, _>("email_verified")? != 0,
            active: row.try_get::<i64, _>("active")? != 0,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// A role the code does not know is an error, never silently the lowest one.
fn decode_role(stored: &str) -> Result<Role, sqlx::Error> {
    Role::parse(stored).ok_or_else(|| sqlx::Error::ColumnDecode {
        index: "role".into(),
        source: format!("unknown role {stored:?}").into(),
    })
}

/// The `password_hash` of an account without a password (it signs in through identity
/// providers): matches no password, and login treats it as an unknown account.
pub const NO_PASSWORD: &str = "";

pub struct NewUser<'a> {
    pub id: &'a str,
    /// Trimmed, as typed; lookups use its lower-case form.
    pub email: &'a str,
    pub name: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
    pub now: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum InsertUserError {
    #[error("email already registered")]
    EmailTaken,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// `session_epoch` (migration 3) is no longer read: access tokens end with their session.
/// It stays while older instances sharing the database may still read it, for a rolling
/// deploy; a later release drops it.
const COLUMNS: &str =
    "id, email, name, password_hash, role, email_verified, active, created_at, updated_at";

/// The form under which emails are compared: Unicode lower case, identical on every backend.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

pub async fn insert<'e>(
    db: impl Executor<'e, Database = Any>,
    user: NewUser<'_>,
) -> Result<UserRow, InsertUserError> {
    sqlx::query_as::<_, UserRow>(
        "insert into users (id, email, email_lower, name, password_hash, role, created_at, updated_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $7) \
         returning id, email, name, password_hash, role, email_verified, active, created_at, updated_at",
    )
    .bind(user.id)
    .bind(user.email)
    .bind(email_key(user.email))
    .bind(user.name)
    .bind(user.password_hash)
    .bind(user.role.as_str())
    .bind(user.now)
    .fetch_one(db)
    .await
    .map_err(|e| {
        if is_unique_violation(&e, "users_email_lower_key") {
            InsertUserError::EmailTaken
        } else {
            InsertUserError::Db(e)
        }
    })
}

pub async fn find_by_email<'e>(
    db: impl Executor<'e, Database = Any>,
    email: &str,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from users where email_lower = $1"
    )))
    .bind(email_key(email))
    .fetch_optional(db)
    .await
}

pub async fn find_by_id<'e>(
    db: impl Executor<'e, Database = Any>,
    id: &str,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from users where id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await
}

pub async fn set_password_hash<'e>(
    db: impl Executor<'e, Database = Any>,
    id: &str,
    password_hash: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("update users set password_hash = $1, updated_at = $2 where id = $3")
        .bind(password_hash)
        .bind(now)
        .bind(id)
        .execute(db)
        .await
        .map(|_| ())
}

pub async fn set_active<'e>(
    db: impl Executor<'e, Database = Any>,
    id: &str,
    active: bool,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("update users set active = $1, updated_at = $2 where id = $3")
        .bind(i64::from(active))
        .bind(now)
        .bind(id)
        .execute(db)
        .await
        .map(|_| ())
}

pub async fn set_role<'e>(
    db: impl Executor<'e, Database = Any>,
    id: &str,
    role: Role,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("update users set role = $1, updated_at = $2 where id = $3")
        .bind(role.as_str())
        .bind(now)
        .bind(id)
        .execute(db)
        .await
        .map(|_| ())
}

/// `%…%` for `like`, with the pattern's own wildcards escaped.
fn contains_pattern(q: &str) -> String {
    let escaped = q
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// One page of people whose email or name contains `q`, oldest first; and how many match.
pub async fn search<'e, E>(
    db: E,
    q: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<UserRow>, i64), sqlx::Error>
where
    E: Executor<'e, Database = Any> + Copy,
{
    let pattern = contains_pattern(q);
    let filter = "email_lower like $1 escape '\\' or lower(name) like $1 escape '\\'";
    let rows = sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from users where {filter} order by created_at, id limit $2 offset $3"
    )))
    .bind(&pattern)
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await?;
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select count(*) from users where {filter}"
    )))
    .bind(&pattern)
    .fetch_one(db)
    .await?;
    Ok((rows, total))
}

/// Locks the rows of every active admin until the transaction ends, and says how many
/// there are. The last-admin rule is decided on this count: on PostgreSQL a concurrent
/// change of another admin waits for the lock (and is then seen), so two admins cannot
/// disable each other at once. (`update` rather than `select … for update`, which SQLite
/// lacks; there the write transaction already holds the database's only write lock.)
pub async fn lock_active_admins<'e>(
    db: impl Executor<'e, Database = Any>,
) -> Result<u64, sqlx::Error> {
    let locked = sqlx::query("update users set role = role where role = 'admin' and active = 1")
        .execute(db)
        .await?;
    Ok(locked.rows_affected())
}

/// Sets role and active together.
pub async fn update_access<'e>(
    db: impl Executor<'e, Database = Any>,
    id: &str,
    role: Role,
    active: bool,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("update users set role = $1, active = $2, updated_at = $3 where id = $4")
        .bind(role.as_str())
        .bind(i64::from(active))
        .bind(now)
        .bind(id)
        .execute(db)
        .await
        .map(|_| ())
}

/// Records that the person proved they read mail at their address.
pub async fn mark_email_verified<'e>(
    db: impl Executor<'e, Database = Any>,
    id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("update users set email_verified = 1, updated_at = $1 where id = $2")
        .bind(now)
        .bind(id)
        .execute(db)
        .await
        .map(|_| ())
}

/// Holds the person's row for the rest of the transaction, when their stored password hash
/// is still `hash` (not empty) and they are active: a sign-in checked the password against
/// `hash` outside the transaction, and a reset, change or removal of the password since (or
/// the account's disabling) must win over it. `false` when any of these happened.
pub async fn hold_if_password_is<'e>(
    db: impl Executor<'e, Database = Any>,
    id: &str,
    hash: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query(
        "update users set updated_at = updated_at \
         where id = $1 and password_hash = $2 and password_hash <> '' and active = 1",
    )
    .bind(id)
    .bind(hash)
    .execute(db)
    .await
    .map(|r| r.rows_affected() == 1)
}

/// Replaces the password hash `old` by `new`; `false` (nothing written) when it is no
/// longer `old`.
pub async fn replace_password_hash<'e>(
    db: impl Executor<'e, Database = Any>,
    id: &str,
    old: &str,
    new: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    sqlx::query(
        "update users set password_hash = $1, updated_at = $2 where id = $3 and password_hash = $4",
    )
    .bind(new)
    .bind(now)
    .bind(id)
    .bind(old)
    .execute(db)
    .await
    .map(|r| r.rows_affected() == 1)
}

/// Holds the person's row for the rest of the transaction (a change of their sign-in
/// methods waits for, or is waited for by, any other); `false` when there is no such row.
pub async fn hold<'e>(
    db: impl Executor<'e, Database = Any>,
    id: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query("update users set updated_at = updated_at where id = $1")
        .bind(id)
        .execute(db)
        .await
        .map(|r| r.rows_affected() == 1)
}
