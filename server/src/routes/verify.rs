//! Email verification by a 6-digit code: `POST /api/auth/verify-email` and
//! `POST /api/auth/verify-email/resend`. The rules are in `auth::email_code`.

use crate::{
    auth::{
        email_code::{self, Check},
        extract::AllowUnverified,
        throttle, validate,
    },
    db::{audit, email_codes, users, users::UserRow},
    error::{ApiError, ApiJson},
    mail::Email,
    state::AppState,
};
use app::api::{User, VerifyEmailRequest};
use axum::{
    extract::{ConnectInfo, State},
    http::StatusCode,
    routing::post,
    Json, Router,
};
use sqlx::{Any, Executor};
use std::net::SocketAddr;
use subtle::ConstantTimeEq;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/verify-email", post(verify))
        .route("/api/auth/verify-email/resend", post(resend))
}

/// Codes sent a person in an hour, on top of the one-a-minute rule.
const RESEND_BUDGET: throttle::Budget = throttle::Budget {
    limit: 5,
    window_secs: 60 * 60,
};

/// Stores a fresh code for `user` (in the caller's transaction, if any) and returns the
/// message carrying it, to be queued once the code is committed.
pub async fn new_code<'e>(
    db: impl Executor<'e, Database = Any>,
    state: &AppState,
    user: &UserRow,
    now: i64,
) -> Result<Email, sqlx::Error> {
    let code = email_code::generate(&mut rand::rng());
    let digest = email_code::digest(&state.secret, &user.id, &code);
    email_codes::replace(db, &user.id, &digest, now + email_code::TTL_SECS, now).await?;
    Ok(Email {
        to: user.email.clone(),
        subject: format!("{code} is your verification code"),
        body: format!(
            "Hello {name},\n\n\
             Your verification code is {code}\n\n\
             Enter it at {url}/verify-email within 10 minutes.\n\n\
             If you did not create an account, ignore this message.\n",
            name = user.name,
            url = state.settings.public_url,
        ),
    })
}

async fn verify(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    AllowUnverified(user): AllowUnverified,
    ApiJson(body): ApiJson<VerifyEmailRequest>,
) -> Result<Json<User>, ApiError> {
    let Some(code) = email_code::normalise(&body.code) else {
        let mut errors = validate::FieldErrors::new();
        errors.insert(
            "code".into(),
            "Enter the 6-digit code from the email.".into(),
        );
        return Err(ApiError::Validation(errors));
    };
    let now = state.clock.unix();
    let id = user.user_id();
    if user.account.row.email_verified {
        return current(&state, id).await.map(Json);
    }
    let pending = email_codes::count_attempt(state.db.pool(), id).await?;
    let presented = email_code::digest(&state.secret, id, &code);
    let matches = pending
        .as_ref()
        .is_some_and(|p| bool::from(p.digest.as_bytes().ct_eq(presented.as_bytes())));
    match email_code::check(pending.as_ref(), matches, now) {
        Check::Verified => {}
        Check::Wrong { attempts_left } => return Err(ApiError::CodeInvalid { attempts_left }),
        Check::Expired | Check::NonePending => return Err(ApiError::CodeExpired),
        Check::AttemptsExceeded => return Err(ApiError::CodeAttemptsExceeded),
    }
    let mut tx = state.db.begin_write().await?;
    users::mark_email_verified(&mut *tx, id, now).await?;
    email_codes::delete(&mut *tx, id).await?;
    let ip = addr.ip().to_string();
    audit::record(
        &mut *tx,
        audit::Event {
            action: audit::Action::EmailVerified,
            actor_id: Some(id),
            subject_id: Some(id),
            ip: Some(&ip),
            detail: None,
            now,
        },
    )
    .await?;
    tx.commit().await?;
    state.users.evict(id);
    tracing::info!(user_id = %id, "email verified");
    current(&state, id).await.map(Json)
}

async fn current(state: &AppState, id: &str) -> Result<User, ApiError> {
    users::find_by_id(state.db.pool(), id)
        .await?
        .map(|row| row.to_api())
        .ok_or(ApiError::TokenInvalid)
}

async fn resend(
    State(state): State<AppState>,
    AllowUnverified(user): AllowUnverified,
) -> Result<StatusCode, ApiError> {
    let now = state.clock.unix();
    let row = users::find_by_id(state.db.pool(), user.user_id())
        .await?
        .ok_or(ApiError::TokenInvalid)?;
    if row.email_verified {
        return Err(ApiError::AlreadyVerified);
    }
    let last = email_codes::sent_at(state.db.pool(), &row.id).await?;
    if let Some(wait) = email_code::resend_wait(last, now) {
        return Err(ApiError::RateLimited {
            retry_after: wait as u64,
        });
    }
    let key = format!("verify-resend:{}", row.id);
    let budget = [(key.as_str(), RESEND_BUDGET)];
    state
        .throttle
        .check(&budget, now)
        .map_err(|retry_after| ApiError::RateLimited { retry_after })?;
    state.throttle.hit(&budget, now);
    let email = new_code(state.db.pool(), &state, &row, now).await?;
    state.mailer.queue(email);
    tracing::info!(user_id = %row.id, "verification code sent again");
    Ok(StatusCode::ACCEPTED)
}
