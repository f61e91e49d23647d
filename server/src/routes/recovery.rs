//! Password reset by an emailed link: `POST /api/auth/password/forgot` and
//! `POST /api/auth/password/reset`.

use crate::{
    auth::{throttle, tokens, validate},
    db::{
        audit, password_resets,
        password_resets::Claim,
        sessions,
        users::{self, email_key},
    },
    error::{ApiError, ApiJson},
    mail::Email,
    state::AppState,
};
use app::api::{ForgotPasswordRequest, ResetPasswordRequest};
use axum::{
    extract::{ConnectInfo, State},
    http::StatusCode,
    routing::post,
    Router,
};
use secrecy::SecretString;
use std::net::SocketAddr;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/password/forgot", post(forgot))
        .route("/api/auth/password/reset", post(reset))
}

/// How long an emailed link works.
pub const LINK_TTL_SECS: i64 = 30 * 60;

/// Links asked for one address: 3 in 15 minutes (whether or not it has an account, so the
/// limit reveals nothing).
const PER_ADDRESS: throttle::Budget = throttle::Budget {
    limit: 3,
    window_secs: 15 * 60,
};
/// Links asked from one network address: 20 an hour.
const PER_IP: throttle::Budget = throttle::Budget {
    limit: 20,
    window_secs: 60 * 60,
};

/// Always 202 once the address is well formed: whether an account exists is decided in the
/// background, so the answer and its timing are the same either way.
async fn forgot(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<ForgotPasswordRequest>,
) -> Result<StatusCode, ApiError> {
    let mut errors = validate::FieldErrors::new();
    let email = validate::email(&body.email, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let now = state.clock.unix();
    let ip = addr.ip().to_string();
    let address_key = format!("forgot:{}", email_key(&email));
    let ip_key = format!("forgot-ip:{ip}");
    let budgets = [
        (address_key.as_str(), PER_ADDRESS),
        (ip_key.as_str(), PER_IP),
    ];
    state
        .throttle
        .check_and_hit(&budgets, now)
        .map_err(|retry_after| ApiError::RateLimited { retry_after })?;
    // Composed through the mailer, so shutdown waits for it as for queued mail.
    let mailer = state.mailer.clone();
    mailer.compose_and_queue(async move { reset_link(&state, &email, &ip, now).await });
    Ok(StatusCode::ACCEPTED)
}

/// The message with a new link, when `email` is an active account's.
async fn reset_link(
    state: &AppState,
    email: &str,
    ip: &str,
    now: i64,
) -> Result<Option<Email>, sqlx::Error> {
    let Some(user) = users::find_by_email(state.db.pool(), email).await? else {
        tracing::info!("password reset asked for an unknown address");
        return Ok(None);
    };
    if !user.active {
        tracing::info!(user_id = %user.id, "password reset asked for a disabled account");
        return Ok(None);
    }
    let token = tokens::random_token(&mut rand::rng());
    password_resets::insert(
        state.db.pool(),
        &tokens::hash(&token),
        &user.id,
        now,
        now + LINK_TTL_SECS,
    )
    .await?;
    audit::record(
        state.db.pool(),
        audit::Event {
            action: audit::Action::PasswordResetRequested,
            actor_id: None,
            subject_id: Some(&user.id),
            ip: Some(ip),
            detail: None,
            now,
        },
    )
    .await?;
    // In the fragment, so the token never reaches a server log or a `Referer`.
    let link = format!("{}/reset-password#token={token}", state.settings.public_url);
    tracing::info!(user_id = %user.id, "password reset link queued");
    // No free text of the account (its name) in the message: whoever registered an address
    // chose it, and it would reach that address's owner.
    Ok(Some(Email {
        to: user.email.clone(),
        subject: "Reset your password".into(),
        body: format!(
            "Hello,\n\n\
             Someone (we hope you) asked to reset the password of your account.\n\
             Open this link within 30 minutes to choose a new one:\n\n{link}\n\n\
             The link works once. Every device signed in to your account will be signed out.\n\
             If you did not ask for this, ignore this message: your password stays as it is.\n"
        ),
    }))
}

/// Sets a new password with a live link, and signs the person out everywhere.
async fn reset(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<ResetPasswordRequest>,
) -> Result<StatusCode, ApiError> {
    let mut errors = validate::FieldErrors::new();
    validate::password(&body.password, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    if !tokens::looks_valid(&body.token) {
        return Err(ApiError::ResetTokenInvalid);
    }
    // Hashed before the link is used up, so a busy server (503) leaves the link working.
    let password_hash = state
        .passwords
        .hash(&SecretString::from(body.password))
        .await?;
    let now = state.clock.unix();
    let mut tx = state.db.begin_write().await?;
    let user_id = match password_resets::claim(&mut tx, &tokens::hash(&body.token), now).await? {
        Claim::Claimed { user_id } => user_id,
        Claim::Expired => return Err(ApiError::ResetTokenExpired),
        Claim::Invalid => return Err(ApiError::ResetTokenInvalid),
    };
    // A link sent before an admin disabled the person does not bring the account back.
    if !users::find_by_id(&mut *tx, &user_id)
        .await?
        .is_some_and(|u| u.active)
    {
        return Err(ApiError::ResetTokenInvalid);
    }
    users::set_password_hash(&mut *tx, &user_id, &password_hash, now).await?;
    users::bump_epoch(&mut *tx, &user_id, now).await?;
    // The link came by mail to the address: that proves it as well as a code would.
    users::mark_email_verified(&mut *tx, &user_id, now).await?;
    password_resets::delete_for_user(&mut *tx, &user_id).await?;
    let ended = sessions::revoke_all_of_user(&mut *tx, &user_id, now, "password reset").await?;
    let ip = addr.ip().to_string();
    audit::record(
        &mut *tx,
        audit::Event {
            action: audit::Action::PasswordReset,
            actor_id: Some(&user_id),
            subject_id: Some(&user_id),
            ip: Some(&ip),
            detail: None,
            now,
        },
    )
    .await?;
    tx.commit().await?;
    state.users.evict(&user_id);
    tracing::info!(user_id = %user_id, sessions_ended = ended, "password reset");
    Ok(StatusCode::NO_CONTENT)
}
