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

/// Stores a fresh code for `user` (in the caller's transaction, if any) unless one was
/// sent less than a minute ago, and returns the message carrying it, to be queued once the
/// code is committed; `None` when it is too early.
pub async fn new_code<'e>(
    db: impl Executor<'e, Database = Any>,
    state: &AppState,
    user: &UserRow,
    now: i64,
) -> Result<Option<Email>, sqlx::Error> {
    let code = email_code::generate(&mut rand::rng());
    let digest = email_code::digest(&state.secret, &user.id, &code);
    let expires_at = now + email_code::TTL_SECS;
    let sent_before = now - email_code::RESEND_INTERVAL_SECS;
    if !email_codes::replace(db, &user.id, &digest, expires_at, now, sent_before).await? {
        return Ok(None);
    }
    // The code is in the body only: subjects are logged (see `mail`). No free text of the
    // account (its name) either: whoever registers chooses it, and it reaches the address.
    Ok(Some(Email {
        to: user.email.clone(),
        subject: "Your verification code".into(),
        body: format!(
            "Hello,\n\n\
             Your verification code is {code}\n\n\
             Enter it at {url}/verify-email within 10 minutes.\n\n\
             If you did not create an account, ignore this message.\n",
            url = state.settings.public_url,
        ),
    }))
}

async fn verify(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    AllowUnverified(user): AllowUnverified,
    ApiJson(body): ApiJson<VerifyEmailRequest>,
) -> Result<Json<User>, ApiError> {
    let now = state.clock.unix();
    let id = user.user_id();
    if user.account.row.email_verified {
        return current(&state, id).await.map(Json);
    }
    let Some(code) = email_code::normalise(&body.code) else {
        let mut errors = validate::FieldErrors::new();
        errors.insert(
            "code".into(),
            "Enter the 6-digit code from the email.".into(),
        );
        return Err(ApiError::Validation(errors));
    };
    let pending = email_codes::count_attempt(state.db.pool(), id, now).await?;
    let presented = email_code::digest(&state.secret, id, &code);
    let matches = pending
        .as_ref()
        .is_some_and(|p| bool::from(p.digest.as_bytes().ct_eq(presented.as_bytes())));
    match email_code::check(pending.as_ref(), matches, now) {
        Check::Verified => {}
        Check::Wrong { attempts_left } => return Err(ApiError::CodeInvalid { attempts_left }),
        Check::Expired | Check::NonePending => return Err(ApiError::CodeExpired),
        Check::AttemptsExceeded => return Err(ApiError::CodeAttemptsExceeded),
        Check::TooManyToday { retry_after } => {
            return Err(ApiError::RateLimited {
                retry_after: retry_after as u64,
            })
        }
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
    state
        .throttle
        .check_and_hit(&[(key.as_str(), RESEND_BUDGET)], now)
        .map_err(|retry_after| ApiError::RateLimited { retry_after })?;
    // Decided again in the statement that stores the code: a parallel request got in first.
    let Some(email) = new_code(state.db.pool(), &state, &row, now).await? else {
        return Err(ApiError::RateLimited {
            retry_after: email_code::RESEND_INTERVAL_SECS as u64,
        });
    };
    state.mailer.queue(email);
    tracing::info!(user_id = %row.id, "verification code sent again");
    Ok(StatusCode::ACCEPTED)
}
