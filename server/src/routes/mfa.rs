//! The second factor: `/api/me/mfa/*` for the signed-in person's authenticator app and
//! recovery codes, and `POST /api/auth/mfa/verify`, the second step of a sign-in.

use super::{
    auth::{delivery, session_response},
    client,
    extract::{AuthUser, ClientIp},
};
use crate::{
    error::{ApiError, ApiJson},
    service::mfa::{self, Answer},
    state::AppState,
};
use api::{CodeRequest, MfaStatus, MfaVerifyRequest, RecoveryCodes, TotpSetup};
use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
    routing::{delete, get, post},
    Json, Router,
};
use std::collections::BTreeMap;

/// Paths from the endpoint table the browser client uses too, so the two cannot drift.
pub fn router() -> Router<AppState> {
    use api::endpoints::*;
    Router::new()
        .route(MFA_VERIFY.path, post(verify))
        .route(MFA_STATUS.path, get(status))
        .route(TOTP_SETUP.path, post(setup))
        .route(TOTP_CONFIRM.path, post(confirm))
        .route(TOTP_DISABLE.path, delete(disable))
        .route(NEW_RECOVERY_CODES.path, post(new_recovery_codes))
}

/// A code field that is present and not absurdly long (what it holds is judged later).
fn code_field(name: &str, code: &str) -> Result<(), ApiError> {
    let trimmed = code.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 64 {
        let why = if trimmed.is_empty() {
            "Enter the code."
        } else {
            "That is not a code."
        };
        return Err(ApiError::Validation(BTreeMap::from([(
            name.to_string(),
            why.to_string(),
        )])));
    }
    Ok(())
}

async fn status(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<MfaStatus>, ApiError> {
    let (totp_enabled, left) = mfa::status(&state.core, user.user_id()).await?;
    Ok(Json(MfaStatus {
        totp_enabled,
        recovery_codes_left: u32::try_from(left).unwrap_or(0),
    }))
}

async fn setup(State(state): State<AppState>, user: AuthUser) -> Result<Json<TotpSetup>, ApiError> {
    let enrolment = mfa::setup(&state.core, user.user_id(), state.clock.unix()).await?;
    Ok(Json(TotpSetup {
        secret: enrolment.secret_base32,
        otpauth_uri: enrolment.otpauth_uri,
        qr_svg: enrolment.qr_svg,
    }))
}

async fn confirm(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    user: AuthUser,
    ApiJson(body): ApiJson<CodeRequest>,
) -> Result<Json<RecoveryCodes>, ApiError> {
    code_field("code", &body.code)?;
    let client = client(&headers, &ip);
    let recovery_codes = mfa::confirm(
        &state.core,
        user.user_id(),
        &body.code,
        client,
        state.clock.unix(),
    )
    .await?;
    Ok(Json(RecoveryCodes { recovery_codes }))
}

async fn disable(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    user: AuthUser,
    ApiJson(body): ApiJson<CodeRequest>,
) -> Result<StatusCode, ApiError> {
    code_field("code", &body.code)?;
    let client = client(&headers, &ip);
    mfa::disable(
        &state.core,
        user.user_id(),
        &body.code,
        client,
        state.clock.unix(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn new_recovery_codes(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    user: AuthUser,
    ApiJson(body): ApiJson<CodeRequest>,
) -> Result<Json<RecoveryCodes>, ApiError> {
    code_field("code", &body.code)?;
    let client = client(&headers, &ip);
    let recovery_codes = mfa::regenerate_recovery_codes(
        &state.core,
        user.user_id(),
        &body.code,
        client,
        state.clock.unix(),
    )
    .await?;
    Ok(Json(RecoveryCodes { recovery_codes }))
}

/// The second step of a sign-in: `{mfa_token, code}` or `{mfa_token, recovery_code}`, one
/// of the two. Answers as a login does (`Session` and the refresh cookie, or the body for
/// clients that ask).
async fn verify(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<MfaVerifyRequest>,
) -> Result<Response, ApiError> {
    let answer = match (body.code, body.recovery_code) {
        (Some(code), None) => {
            code_field("code", &code)?;
            Answer::Code(code)
        }
        (None, Some(code)) => {
            code_field("recovery_code", &code)?;
            Answer::RecoveryCode(code)
        }
        _ => {
            return Err(ApiError::Validation(BTreeMap::from([(
                "code".to_string(),
                "Send either a code or a recovery code.".to_string(),
            )])))
        }
    };
    if body.mfa_token.is_empty() {
        return Err(ApiError::Validation(BTreeMap::from([(
            "mfa_token".to_string(),
            "The token from the first step is required.".to_string(),
        )])));
    }
    let now = state.clock.unix();
    let client = client(&headers, &ip);
    let signed = mfa::verify(&state.core, &body.mfa_token, answer, client, now).await?;
    session_response(&state, StatusCode::OK, &signed, delivery(&headers), now)
}
