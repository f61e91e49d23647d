//! `GET /api/me`: the signed-in person.

use crate::{auth::extract::AuthUser, db::users, error::ApiError, state::AppState};
use app::api::User;
use axum::{extract::State, routing::get, Json, Router};

pub fn router() -> Router<AppState> {
    Router::new().route("/me", get(me))
}

async fn me(State(state): State<AppState>, user: AuthUser) -> Result<Json<User>, ApiError> {
    let row = users::find_by_id(state.db.pool(), &user.user_id)
        .await?
        .ok_or(ApiError::TokenInvalid)?;
    Ok(Json(row.to_api()))
}
