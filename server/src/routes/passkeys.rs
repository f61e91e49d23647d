//! Passkeys: `/api/me/passkeys/*` for the signed-in person's, and `/api/auth/passkey/*` to
//! sign in with one. The WebAuthn JSON goes through as browsers write it
//! (`PublicKeyCredential.toJSON()`) and read it (`parseCreationOptionsFromJSON`).

use super::{
    auth::{delivery, session_response},
    client,
    extract::{AuthUser, ClientIp},
};
use crate::{
    db::passkeys::PasskeyRow,
    error::{ApiError, ApiJson, ApiPath},
    service::passkeys,
    state::AppState,
};
use api::{PasskeyInfo, PasskeyRegistrationStart, WebAuthnJson};
use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
    routing::{delete, get, post},
    Json, Router,
};

/// Paths from the endpoint table the browser client uses too, so the two cannot drift.
pub fn router() -> Router<AppState> {
    use api::endpoints::*;
    Router::new()
        .route(PASSKEY_REGISTER_START.path, post(register_start))
        .route(PASSKEY_REGISTER_FINISH.path, post(register_finish))
        .route(MY_PASSKEYS.path, get(list))
        .route(DELETE_PASSKEY.path, delete(remove))
        .route(PASSKEY_SIGN_IN_START.path, post(sign_in_start))
        .route(PASSKEY_SIGN_IN_FINISH.path, post(sign_in_finish))
}

fn info(row: &PasskeyRow) -> PasskeyInfo {
    PasskeyInfo {
        id: row.id.clone(),
        name: row.name.clone(),
        created_at: crate::clock::rfc3339(row.created_at),
        last_used_at: row.last_used_at.map(crate::clock::rfc3339),
    }
}

async fn register_start(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<PasskeyRegistrationStart>,
) -> Result<Json<WebAuthnJson>, ApiError> {
    let options = passkeys::start_registration(
        &state.core,
        user.user_id(),
        body.name.as_deref(),
        state.clock.unix(),
    )
    .await?;
    Ok(Json(WebAuthnJson(options)))
}

async fn register_finish(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    user: AuthUser,
    ApiJson(body): ApiJson<WebAuthnJson>,
) -> Result<(StatusCode, Json<PasskeyInfo>), ApiError> {
    let client = client(&headers, &ip);
    let row = passkeys::finish_registration(
        &state.core,
        user.user_id(),
        user.session_id(),
        body.0,
        client,
        state.clock.unix(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(info(&row))))
}

async fn list(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Vec<PasskeyInfo>>, ApiError> {
    let rows = passkeys::list(&state.core, user.user_id()).await?;
    Ok(Json(rows.iter().map(info).collect()))
}

async fn remove(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let client = client(&headers, &ip);
    passkeys::remove(&state.core, user.user_id(), &id, client, state.clock.unix()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn sign_in_start(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Result<Json<WebAuthnJson>, ApiError> {
    let client = client(&headers, &ip);
    let options = passkeys::start_sign_in(&state.core, client, state.clock.unix()).await?;
    Ok(Json(WebAuthnJson(options)))
}

/// Signs in as a login does: `Session` and the refresh cookie (or the body, for clients
/// that ask).
async fn sign_in_finish(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<WebAuthnJson>,
) -> Result<Response, ApiError> {
    let now = state.clock.unix();
    let client = client(&headers, &ip);
    let signed = passkeys::finish_sign_in(&state.core, body.0, client, now).await?;
    session_response(&state, StatusCode::OK, &signed, delivery(&headers), now)
}
