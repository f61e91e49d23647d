//! Logs and what every request leaves behind: the tracing subscriber (`LOG_FORMAT`), and
//! the layers that give each request an id, a span and its HTTP metrics.

use crate::config::LogFormat;
use axum::{
    body::Body,
    extract::MatchedPath,
    http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response},
};
use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};
use tower::{Layer, Service};
use tower_http::trace::{HttpMakeClassifier, TraceLayer};
use tracing::Span;
use tracing_subscriber::EnvFilter;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest `X-Request-Id` taken from a client.
pub const MAX_REQUEST_ID: usize = 128;

/// The route of requests no route matched (static files, unknown pages), in metrics and
/// logs: their path would let any client make up series, and log lines, at will.
pub const UNMATCHED: &str = "fallback";

/// Installs the global subscriber once; later calls (tests) are no-ops.
pub fn init(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        // The span list carries the request span's fields (its id) on every line, also on
        // lines logged inside a nested span.
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
}

type MakeSpan = fn(&Request<Body>) -> Span;

/// Request spans and their trace events. Goes inside [`Observe`], so the span knows the
/// request's id.
pub fn trace_layer() -> TraceLayer<HttpMakeClassifier, MakeSpan> {
    TraceLayer::new_for_http().make_span_with(make_span as MakeSpan)
}

/// The id of a request: the client's `X-Request-Id` when sane, else a new one. In the
/// request's extensions, its span and the answer's `X-Request-Id`.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// Request spans carry the method, the matched route and the request's id, never the path
/// (it may hold an id), the query string (it may hold a one-time token) nor any other
/// header.
fn make_span(request: &Request<Body>) -> Span {
    let id = request
        .extensions()
        .get::<RequestId>()
        .map_or("", |id| id.0.as_str());
    tracing::info_span!(
        "request",
        method = %request.method(),
        route = route(request),
        request_id = id,
    )
}

/// The matched route (`/api/sessions/{id}`), never the path itself.
fn route<B>(request: &Request<B>) -> &str {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
}

/// The client's id when it is short, visible ASCII: nothing that could end a log line or
/// hide in one. Else a new UUID.
fn request_id(headers: &HeaderMap) -> String {
    match headers.get(REQUEST_ID).map(HeaderValue::as_bytes) {
        Some(id) if is_sane(id) => String::from_utf8_lossy(id).into_owned(),
        _ => uuid::Uuid::new_v4().to_string(),
    }
}

fn is_sane(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_REQUEST_ID && id.iter().all(u8::is_ascii_graphic)
}

/// The method as a label: methods are any token a client likes, so others are `other`.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: &[Method] = &[
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or("other", Method::as_str)
}

/// Gives each request its [`RequestId`] and counts it in `http_requests_total` and
/// `http_request_duration_seconds` (until its response headers). Hand-written rather than
/// `middleware::from_fn`, which boxes and clones the inner service on every request
/// (`routes::mount_api` notes what that cost in the benchmark).
#[derive(Clone, Copy, Debug)]
pub struct Observe;

impl<S> Layer<S> for Observe {
    type Service = Observed<S>;

    fn layer(&self, inner: S) -> Observed<S> {
        Observed { inner }
    }
}

#[derive(Clone, Debug)]
pub struct Observed<S> {
    inner: S,
}

impl<S, B> Service<Request<Body>> for Observed<S>
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    B: 'static,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<B>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let id = request_id(request.headers());
        request.extensions_mut().insert(RequestId(id.clone()));
        let method = method_label(request.method());
        let route = route(&request).to_owned();
        let started = Instant::now();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut response = answer.await?;
            let status = response.status().as_u16().to_string();
            metrics::counter!(
                "http_requests_total",
                "method" => method,
                "route" => route.clone(),
                "status" => status,
            )
            .increment(1);
            metrics::histogram!("http_request_duration_seconds", "route" => route)
                .record(started.elapsed());
            // Checked above, or a UUID: always a valid header value.
            if let Ok(id) = HeaderValue::from_str(&id) {
                response.headers_mut().insert(REQUEST_ID, id);
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_visible_ascii_ids_are_taken() {
        for sane in [
            "abc",
            "0f1e2d3c-4b5a",
            "a:b/c=d+e_f.g~",
            &"x".repeat(MAX_REQUEST_ID),
        ] {
            assert!(is_sane(sane.as_bytes()), "{sane:?}");
        }
        for insane in [
            "",
            "two words",
            "tab\there",
            "line\nbreak",
            "carriage\rreturn",
            "é",
            "\u{1b}[31mred",
            &"x".repeat(MAX_REQUEST_ID + 1),
        ] {
            assert!(!is_sane(insane.as_bytes()), "{insane:?}");
        }
    }

    #[test]
    fn unknown_methods_are_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        let made_up = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&made_up), "other");
    }
}
