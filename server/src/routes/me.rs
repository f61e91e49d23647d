//! `GET /api/me`: the signed-in person.

use crate::{auth::extract::AuthUser, state::AppState};
use axum::{
    http::header,
    response::{IntoResponse, Response},
    routing::get,
    Router,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/me", get(me))
}

/// Answers the `User` JSON rendered when the row was cached: on the hot path a request
/// costs one lookup of the verified token and one of the user (which `AuthUser` did
/// already), and no database.
async fn me(user: AuthUser) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        user.account.json,
    )
        .into_response()
}
