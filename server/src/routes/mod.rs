//! The HTTP API, one module a resource.

pub mod health;

use crate::{error::ApiError, state::AppState};
use axum::{
    extract::{DefaultBodyLimit, Request},
    http::header,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::any,
    Router,
};

/// Largest request body the API reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Mounts everything under `/api`: contract-shaped 404, 405 and 413 included.
pub fn mount_api(router: Router<AppState>) -> Router<AppState> {
    router
        .nest("/api", api_router())
        // `nest` covers `/api` and `/api/…` but not the bare `/api/`.
        .route("/api/", any(|| async { ApiError::NotFound }))
}

fn api_router() -> Router<AppState> {
    Router::new()
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(refuse_large_bodies))
}

/// A declared length over the limit is refused before any handler runs; bodies without
/// a length (chunked) are cut by `DefaultBodyLimit` in the extractor, which answers the same.
async fn refuse_large_bodies(request: Request, next: Next) -> Response {
    let too_large = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|len| len > MAX_BODY_BYTES as u64);
    if too_large {
        return ApiError::PayloadTooLarge.into_response();
    }
    next.run(request).await
}
