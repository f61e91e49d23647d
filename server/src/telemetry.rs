use axum::{extract::MatchedPath, http::Request};
use tower_http::trace::{HttpMakeClassifier, TraceLayer};
use tracing::Span;

/// Installs the global subscriber once; later calls (tests) are no-ops.
pub fn init(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
}

/// Request spans carry the method and the matched route, never the query string (it may
/// hold a one-time token) nor any header.
pub fn trace_layer() -> TraceLayer<HttpMakeClassifier, fn(&Request<axum::body::Body>) -> Span> {
    TraceLayer::new_for_http().make_span_with(make_span as fn(&Request<axum::body::Body>) -> Span)
}

fn make_span(request: &Request<axum::body::Body>) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or_else(|| request.uri().path());
    tracing::info_span!("request", method = %request.method(), route = %route)
}
