//! Email verification by a 6-digit code: `POST /api/auth/verify-email` and
//! `POST /api/auth/verify-email/resend`.

use super::{
    client,
    extract::{AllowUnverified, ClientIp},
    user_json,
};
use crate::{
    auth::{email_code, validate},
    error::{ApiError, ApiJson},
    service::recovery,
    state::AppState,
};
use api::{User, VerifyEmailRequest};
use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
    Json, Router,
};

/// Paths from the endpoint table the browser client uses too, so the two cannot drift.
pub fn router() -> Router<AppState> {
    use api::endpoints::*;
    Router::new()
        .route(VERIFY_EMAIL.path, post(verify))
        .route(RESEND_VERIFICATION.path, post(resend))
}

async fn verify(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    AllowUnverified(user): AllowUnverified,
    ApiJson(body): ApiJson<VerifyEmailRequest>,
) -> Result<Json<User>, ApiError> {
    // Once verified, any body gets the person back: the page may send it twice.
    if user.account.row.email_verified {
        return Ok(Json(user_json(&user.account.row)));
    }
    let Some(code) = email_code::normalise(&body.code) else {
        let mut errors = validate::FieldErrors::new();
        errors.insert(
            "code".into(),
            "Enter the 6-digit code from the email.".into(),
        );
        return Err(ApiError::Validation(errors));
    };
    let row = recovery::verify_email(
        &state.core,
        user.user_id(),
        &code,
        client(&headers, &ip),
        state.clock.unix(),
    )
    .await?;
    Ok(Json(user_json(&row)))
}

async fn resend(
    State(state): State<AppState>,
    AllowUnverified(user): AllowUnverified,
) -> Result<StatusCode, ApiError> {
    recovery::resend_code(&state.core, user.user_id(), state.clock.unix()).await?;
    Ok(StatusCode::ACCEPTED)
}
