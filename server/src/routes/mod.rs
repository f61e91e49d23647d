//! The HTTP API, one module a resource.

pub mod auth;
pub mod health;
pub mod me;

use crate::{config::Settings, error::ApiError, state::AppState};
use axum::{
    extract::{DefaultBodyLimit, Request},
    http::{header, HeaderName, HeaderValue, Method},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::any,
    Router,
};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Largest request body the API reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Mounts everything under `/api`: contract-shaped 404, 405 and 413 included.
pub fn mount_api(router: Router<AppState>, cors: Option<CorsLayer>) -> Router<AppState> {
    let api = match cors {
        Some(cors) => api_router().layer(cors),
        None => api_router(),
    };
    router
        .nest("/api", api)
        // `nest` covers `/api` and `/api/…` but not the bare `/api/`.
        .route("/api/", any(|| async { ApiError::NotFound }))
}

fn api_router() -> Router<AppState> {
    Router::new()
        .merge(auth::router())
        .merge(me::router())
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(refuse_large_bodies))
}

/// CORS for the origins of `ALLOWED_ORIGINS` only, with credentials (the refresh cookie).
/// No layer at all when the list is empty: same-origin needs none.
pub fn cors(settings: &Settings) -> Option<CorsLayer> {
    if settings.allowed_origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = settings
        .allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("x-refresh-token-delivery"),
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
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
