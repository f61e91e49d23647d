//! `GET /api/me`: the signed-in person.

use crate::{
    auth::{extract::AuthUser, user_cache::UserCache},
    clock::SharedClock,
    db::Db,
    error::ApiError,
    state::AppState,
};
use axum::{
    extract::State,
    http::header,
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use std::sync::Arc;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/me", get(me))
}

/// Answers the `User` JSON rendered when the row was cached: on the hot path a request
/// costs one lookup of the verified token and one of the user, and no database.
/// Takes only the parts of the state it needs: cloning the whole `AppState` per request
/// showed in the benchmark.
async fn me(
    State(users): State<Arc<UserCache>>,
    State(db): State<Db>,
    State(clock): State<SharedClock>,
    user: AuthUser,
) -> Result<Response, ApiError> {
    let cached = users
        .get(&db, user.user_id(), clock.unix())
        .await?
        .ok_or(ApiError::TokenInvalid)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], cached.json).into_response())
}
