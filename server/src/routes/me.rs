//! `GET /api/me`: the signed-in person.

use crate::{auth::extract::AuthUser, error::ApiError, state::AppState};
use app::api::User;
use axum::{extract::State, routing::get, Json, Router};

pub fn router() -> Router<AppState> {
    Router::new().route("/me", get(me))
}

async fn me(State(state): State<AppState>, user: AuthUser) -> Result<Json<User>, ApiError> {
    let row = state
        .users
        .get(&state.db, user.user_id(), state.clock.unix())
        .await?
        .ok_or(ApiError::TokenInvalid)?;
    Ok(Json(row.to_api()))
}
