//! The `oidc_flows` table: sign-ins at identity providers in progress, each used once.

use sqlx::{Any, Executor, FromRow};

#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct FlowRow {
    pub provider: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub next_path: String,
    pub link_user_id: Option<String>,
    /// The session of the browser that began the link.
    pub link_family_id: Option<String>,
}

pub struct NewFlow<'a> {
    /// The hash of the flow id the browser holds in its cookie.
    pub id_hash: &'a str,
    pub provider: &'a str,
    pub state: &'a str,
    pub nonce: &'a str,
    pub pkce_verifier: &'a str,
    pub next_path: &'a str,
    pub link_user_id: Option<&'a str>,
    pub link_family_id: Option<&'a str>,
    pub now: i64,
    pub expires_at: i64,
}

pub async fn create<'e>(
    db: impl Executor<'e, Database = Any>,
    flow: NewFlow<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into oidc_flows \
         (id_hash, provider, state, nonce, pkce_verifier, next_path, link_user_id, link_family_id, \
          created_at, expires_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(flow.id_hash)
    .bind(flow.provider)
    .bind(flow.state)
    .bind(flow.nonce)
    .bind(flow.pkce_verifier)
    .bind(flow.next_path)
    .bind(flow.link_user_id)
    .bind(flow.link_family_id)
    .bind(flow.now)
    .bind(flow.expires_at)
    .execute(db)
    .await
    .map(|_| ())
}

/// The flow of `id_hash` for `provider`, when it is neither used nor expired.
pub async fn find_open<'e>(
    db: impl Executor<'e, Database = Any>,
    id_hash: &str,
    provider: &str,
    now: i64,
) -> Result<Option<FlowRow>, sqlx::Error> {
    sqlx::query_as::<_, FlowRow>(
        "select provider, state, nonce, pkce_verifier, next_path, link_user_id, link_family_id \
         from oidc_flows \
         where id_hash = $1 and provider = $2 and used_at is null and expires_at > $3",
    )
    .bind(id_hash)
    .bind(provider)
    .bind(now)
    .fetch_optional(db)
    .await
}

/// Marks the flow of `id_hash` used, when it was not: one statement, so of two callbacks
/// racing with one cookie only one gets `true`.
pub async fn consume<'e>(
    db: impl Executor<'e, Database = Any>,
    id_hash: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    sqlx::query("update oidc_flows set used_at = $1 where id_hash = $2 and used_at is null")
        .bind(now)
        .bind(id_hash)
        .execute(db)
        .await
        .map(|r| r.rows_affected() == 1)
}

/// Ends every link ticket and linking flow of `user_id` (its address turned out to be
/// someone else's: whatever it began must not complete).
pub async fn end_links_of_user(
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("update oidc_flows set used_at = $1 where link_user_id = $2 and used_at is null")
        .bind(now)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("update oidc_link_tickets set used_at = $1 where user_id = $2 and used_at is null")
        .bind(now)
        .bind(user_id)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

/// Deletes flows that ended before `before`; how many.
pub async fn prune<'e>(
    db: impl Executor<'e, Database = Any>,
    before: i64,
) -> Result<u64, sqlx::Error> {
    sqlx::query("delete from oidc_flows where expires_at < $1")
        .bind(before)
        .execute(db)
        .await
        .map(|r| r.rows_affected())
}

/// A one-time ticket for `user_id` to link an identity (stored hashed).
pub async fn create_link_ticket<'e>(
    db: impl Executor<'e, Database = Any>,
    ticket_hash: &str,
    user_id: &str,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into oidc_link_tickets (ticket_hash, user_id, expires_at) values ($1, $2, $3)",
    )
    .bind(ticket_hash)
    .bind(user_id)
    .bind(expires_at)
    .execute(db)
    .await
    .map(|_| ())
}

/// Uses the ticket of `ticket_hash` up, when it is neither used nor expired: its person.
pub async fn consume_link_ticket<'e>(
    db: impl Executor<'e, Database = Any>,
    ticket_hash: &str,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar::<_, String>(
        "update oidc_link_tickets set used_at = $1 \
         where ticket_hash = $2 and used_at is null and expires_at > $1 \
         returning user_id",
    )
    .bind(now)
    .bind(ticket_hash)
    .fetch_optional(db)
    .await
}

/// Deletes tickets that ended before `before`; how many.
pub async fn prune_link_tickets<'e>(
    db: impl Executor<'e, Database = Any>,
    before: i64,
) -> Result<u64, sqlx::Error> {
    sqlx::query("delete from oidc_link_tickets where expires_at < $1")
        .bind(before)
        .execute(db)
        .await
        .map(|r| r.rows_affected())
}
