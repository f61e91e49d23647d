//! The HTTP API, one module a resource.

pub mod admin;
pub mod auth;
pub mod cookie;
pub mod extract;
pub mod health;
pub mod keys;
pub mod me;
pub mod mfa;
pub mod oidc;
pub mod passkeys;
pub mod recovery;
pub mod sessions;
pub mod verify;

use crate::{
    auth::csrf::{self, RequestOrigin},
    config::Settings,
    db::users::UserRow,
    error::ApiError,
    service::Client,
    state::AppState,
};
use axum::{
    extract::DefaultBodyLimit,
    http::{header, request::Parts, HeaderMap, HeaderName, HeaderValue, Method},
    response::IntoResponse,
    routing::{any, get},
    Router,
};
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    set_header::SetResponseHeaderLayer,
};

/// Largest request body the API reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Adds everything under `/api`, with the contract's 404 and 405 for it. Routes carry
/// their full paths rather than sitting in a nested router: nesting (and a `from_fn`
/// middleware) cost a quarter of the throughput of `GET /api/me` (`cargo xtask bench`, F1).
/// Bodies are read through `ApiJson` under `DefaultBodyLimit`, so any body over 64 KiB a
/// route reads answers 413 `payload_too_large`.
/// Every request of `router` and of the API gets `request_limit` to be answered; the CORS
/// layer sits outside the API's limit, so a cut request still carries its CORS headers.
pub fn mount_api(
    router: Router<AppState>,
    cors: Option<CorsLayer>,
    request_limit: std::time::Duration,
) -> Router<AppState> {
    let time_limit =
        || axum::middleware::from_fn_with_state(request_limit, crate::serve::request_time_limit);
    let api = Router::new()
        .merge(auth::router())
        .merge(verify::router())
        .merge(recovery::router())
        .merge(me::router())
        .merge(mfa::router())
        .merge(passkeys::router())
        .merge(sessions::router())
        .merge(admin::router())
        .merge(oidc::router())
        .route(crate::openapi::PATH, get(openapi))
        .route("/api", any(not_found))
        .route("/api/", any(not_found))
        .route("/api/{*rest}", any(not_found))
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // Every API answer is about someone (a person, their sessions, the audit log) or
        // carries a token: no cache, shared or private, may keep it.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(time_limit());
    router.layer(time_limit()).merge(match cors {
        Some(cors) => api.layer(cors),
        None => api,
    })
}

/// The document is the same for the life of the process: made once.
async fn openapi() -> axum::response::Response {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let json = DOCUMENT.get_or_init(crate::openapi::json);
    ([(header::CONTENT_TYPE, "application/json")], json.clone()).into_response()
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// CORS for the origins of `ALLOWED_ORIGINS` only, with credentials (the refresh cookie).
/// No layer at all when the list is empty: same-origin needs none.
pub fn cors(settings: &Settings) -> Option<CorsLayer> {
    if settings.http.allowed_origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = settings
        .http
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

/// The contract's `User` for a stored person: API types are made here, at the edge.
pub fn user_json(row: &UserRow) -> api::User {
    api::User {
        id: row.id.clone(),
        email: row.email.clone(),
        name: row.name.clone(),
        role: row.role,
        email_verified: row.email_verified,
        created_at: crate::clock::rfc3339(row.created_at),
    }
}

/// Where a request came from, for sessions and the audit log.
pub fn client<'a>(headers: &'a HeaderMap, ip: &'a str) -> Client<'a> {
    Client {
        ip: Some(ip),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| &ua[..ua.len().min(512)]), // `to_str` admits ASCII only
    }
}

/// The `Origin` rule of the cookie endpoints (refresh, logout), applied to a request.
/// `SameSite=Strict` already keeps the cookie off cross-site requests; this refuses them
/// outright, before any token is read, so a refused request never consumes one.
pub fn origin_allowed(parts: &Parts, settings: &Settings) -> bool {
    let header = |name: header::HeaderName| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let mut trusted = Vec::with_capacity(1 + settings.http.allowed_origins.len());
    trusted.push(settings.http.public_url.clone());
    trusted.extend(settings.http.allowed_origins.iter().cloned());
    csrf::origin_allowed(
        RequestOrigin {
            // An `Origin` that is not text is still an origin, and an unreadable one: refused.
            origin: parts
                .headers
                .get(header::ORIGIN)
                .map(|v| v.to_str().unwrap_or_default()),
            fetch_site: header(HeaderName::from_static("sec-fetch-site")),
            // HTTP/2 requests carry the authority in the URI instead of `Host`.
            host: header(header::HOST).or_else(|| parts.uri.authority().map(|a| a.as_str())),
        },
        &trusted,
    )
}
