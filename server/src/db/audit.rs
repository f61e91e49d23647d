//! The `audit_log` table: security events, newest first. Never a password or a token.

use sqlx::{Any, Executor, FromRow};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    LoginSucceeded,
    LoginFailed,
    RefreshReused,
    Logout,
    PasswordChanged,
    SessionRevoked,
    AccessChanged,
    SessionsRevokedByAdmin,
    AdminCreated,
    EmailVerified,
    PasswordResetRequested,
    PasswordReset,
    OidcLogin,
    IdentityLinked,
    IdentityUnlinked,
    MfaEnabled,
    MfaDisabled,
    MfaResetByAdmin,
    MfaFailed,
    RecoveryCodesRegenerated,
    RecoveryCodeUsed,
    PasskeyAdded,
    PasskeyRemoved,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::LoginSucceeded => "login_succeeded",
            Action::LoginFailed => "login_failed",
            Action::RefreshReused => "refresh_reused",
            Action::Logout => "logout",
            Action::PasswordChanged => "password_changed",
            Action::SessionRevoked => "session_revoked",
            Action::AccessChanged => "access_changed",
            Action::SessionsRevokedByAdmin => "sessions_revoked_by_admin",
            Action::AdminCreated => "admin_created",
            Action::EmailVerified => "email_verified",
            Action::PasswordResetRequested => "password_reset_requested",
            Action::PasswordReset => "password_reset",
            Action::OidcLogin => "oidc_login",
            Action::IdentityLinked => "identity_linked",
            Action::IdentityUnlinked => "identity_unlinked",
            Action::MfaEnabled => "mfa_enabled",
            Action::MfaDisabled => "mfa_disabled",
            Action::MfaResetByAdmin => "mfa_reset_by_admin",
            Action::MfaFailed => "mfa_failed",
            Action::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            Action::RecoveryCodeUsed => "recovery_code_used",
            Action::PasskeyAdded => "passkey_added",
            Action::PasskeyRemoved => "passkey_removed",
        }
    }
}

pub struct Event<'a> {
    pub action: Action,
    pub actor_id: Option<&'a str>,
    pub subject_id: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub detail: Option<&'a str>,
    pub now: i64,
}

pub async fn record<'e>(
    db: impl Executor<'e, Database = Any>,
    event: Event<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into audit_log (id, at, action, actor_id, subject_id, ip, detail) \
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(event.now)
    .bind(event.action.as_str())
    .bind(event.actor_id)
    .bind(event.subject_id)
    .bind(event.ip)
    .bind(event.detail)
    .execute(db)
    .await
    .map(|_| ())
}

#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct Entry {
    pub id: String,
    pub at: i64,
    pub action: String,
    pub actor_id: Option<String>,
    pub subject_id: Option<String>,
    /// The emails of actor and subject, as they are now.
    pub actor_email: Option<String>,
    pub subject_email: Option<String>,
    pub ip: Option<String>,
    pub detail: Option<String>,
}

/// One page of the log, newest first.
pub async fn page<'e>(
    db: impl Executor<'e, Database = Any>,
    limit: i64,
    offset: i64,
) -> Result<Vec<Entry>, sqlx::Error> {
    sqlx::query_as::<_, Entry>(
        "select a.id, a.at, a.action, a.actor_id, a.subject_id, actor.email as actor_email, \
         subject.email as subject_email, a.ip, a.detail from audit_log a \
         left join users actor on actor.id = a.actor_id \
         left join users subject on subject.id = a.subject_id \
         order by a.at desc, a.id limit $1 offset $2",
    )
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await
}

/// Deletes up to [`super::PRUNE_BATCH`] of the entries recorded before `before` (Unix
/// seconds), so the log does not keep addresses and events for ever; returns how many went.
/// Run it until it deletes fewer ([`super::Db::prune_in_batches`]): one statement over a
/// whole backlog would hold SQLite's write lock for as long as it takes.
pub async fn prune<'e>(
    db: impl Executor<'e, Database = Any>,
    before: i64,
) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "delete from audit_log where id in \
         (select id from audit_log where at < $1 limit $2)",
    )
    .bind(before)
    .bind(super::PRUNE_BATCH)
    .execute(db)
    .await
    .map(|done| done.rows_affected())
}
