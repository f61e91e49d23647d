//! The published keys: what resource servers verify our access tokens with.

use crate::{auth::jwt::Jwk, state::AppState};
use axum::{extract::State, http::header, response::IntoResponse, routing::get, Json, Router};
use serde::Serialize;

pub fn router() -> Router<AppState> {
    Router::new().route("/.well-known/jwks.json", get(jwks))
}

#[derive(Serialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

/// Every key whose tokens may be live, and the next one before it signs. Five minutes of
/// caching: a rotated key is published `AUTH_KEY_PUBLISH_SECS` (10 minutes) before it
/// signs, so caches have it by then.
async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    let keys = state.jwt.jwks(state.clock.unix());
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(JwkSet { keys }),
    )
}
