//! `GET /api/me`: the signed-in person.

use crate::{auth::extract::AllowUnverified, state::AppState};
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
/// already), and no database. A person yet to verify their email may read it.
async fn me(AllowUnverified(user): AllowUnverified) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        user.account.json,
    )
        .into_response()
}
