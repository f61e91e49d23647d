//! `GET /api/me`: the signed-in person.

use super::{extract::AllowUnverified, user_json};
use crate::state::AppState;
use axum::{
    body::Bytes,
    http::header,
    response::{IntoResponse, Response},
    routing::get,
    Router,
};

/// Paths from the endpoint table the browser client uses too, so the two cannot drift.
pub fn router() -> Router<AppState> {
    use api::endpoints::*;
    Router::new().route(ME.path, get(me))
}

/// Answers the `User` JSON rendered once per cached person: on the hot path a request
/// costs one lookup of the verified token and one of the person (which the guard did
/// already), and no database. A person yet to verify their email may read it.
async fn me(AllowUnverified(user): AllowUnverified) -> Response {
    let account = &user.account;
    let json = account.rendered.get_or_init(|| {
        // Serialising these plain fields cannot fail.
        Bytes::from(serde_json::to_vec(&user_json(&account.row)).unwrap_or_default())
    });
    ([(header::CONTENT_TYPE, "application/json")], json.clone()).into_response()
}
