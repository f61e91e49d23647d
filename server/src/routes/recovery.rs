//! Password reset by an emailed link: `POST /api/auth/password/forgot` and
//! `POST /api/auth/password/reset`.

use super::{client, extract::ClientIp};
use crate::{
    auth::validate,
    error::{ApiError, ApiJson},
    service::recovery,
    state::AppState,
};
use api::{ForgotPasswordRequest, ResetPasswordRequest};
use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
    Router,
};
use secrecy::SecretString;
use tracing::Instrument;

/// Paths from the endpoint table the browser client uses too, so the two cannot drift.
pub fn router() -> Router<AppState> {
    use api::endpoints::*;
    Router::new()
        .route(FORGOT_PASSWORD.path, post(forgot))
        .route(RESET_PASSWORD.path, post(reset))
}

/// Always 202 once the address is well formed: whether an account exists is decided in the
/// background, so the answer and its timing are the same either way.
async fn forgot(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ForgotPasswordRequest>,
) -> Result<StatusCode, ApiError> {
    let mut errors = validate::FieldErrors::new();
    let email = validate::email(&body.email, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    recovery::request_reset(
        &state.core,
        email,
        client(&headers, &ip),
        state.clock.unix(),
    )
    .await?;
    Ok(StatusCode::ACCEPTED)
}

/// Sets a new password with a live link, and signs the person out everywhere.
async fn reset(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ResetPasswordRequest>,
) -> Result<StatusCode, ApiError> {
    let mut errors = validate::FieldErrors::new();
    validate::password(&body.password, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    // Carried out to its end even if the client goes away or the request's time limit
    // cuts the answer: between the claim of the link and the new password there are two
    // commits, and a cut in between would use the link up for nothing.
    let user_agent = super::client(&headers, &ip).user_agent.map(str::to_string);
    let (core, now) = (state.core.clone(), state.clock.unix());
    tokio::spawn(
        async move {
            let client = crate::service::Client {
                ip: Some(&ip),
                user_agent: user_agent.as_deref(),
            };
            recovery::reset_password(
                &core,
                &body.token,
                SecretString::from(body.password),
                client,
                now,
            )
            .await
        }
        // Its log lines are this request's, with its id.
        .in_current_span(),
    )
    .await
    .map_err(ApiError::internal)??;
    Ok(StatusCode::NO_CONTENT)
}
