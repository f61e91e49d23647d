//! The HTTP API, one module a resource.

pub mod admin;
pub mod auth;
pub mod health;
pub mod me;
pub mod recovery;
pub mod sessions;
pub mod verify;

use crate::{config::Settings, error::ApiError, state::AppState};
use axum::{
    extract::DefaultBodyLimit,
    http::{header, HeaderName, HeaderValue, Method},
    routing::any,
    Router,
};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Largest request body the API reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Adds everything under `/api`, with the contract's 404 and 405 for it. Routes carry
/// their full paths rather than sitting in a nested router: nesting (and a `from_fn`
/// middleware) cost a quarter of the throughput of `GET /api/me` (`cargo xtask bench`, F1).
/// Bodies are read through `ApiJson` under `DefaultBodyLimit`, so any body over 64 KiB a
/// route reads answers 413 `payload_too_large`.
pub fn mount_api(router: Router<AppState>, cors: Option<CorsLayer>) -> Router<AppState> {
    let api = Router::new()
        .merge(auth::router())
        .merge(verify::router())
        .merge(recovery::router())
        .merge(me::router())
        .merge(sessions::router())
        .merge(admin::router())
        .route("/api", any(not_found))
        .route("/api/", any(not_found))
        .route("/api/{*rest}", any(not_found))
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    router.merge(match cors {
        Some(cors) => api.layer(cors),
        None => api,
    })
}

async fn not_found() -> ApiError {
    ApiError::NotFound
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
