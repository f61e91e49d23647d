//! Response headers that make the pages hard to abuse.

use axum::{
    http::{header, HeaderValue},
    Router,
};
use leptos::prelude::{use_context, use_nonce};
use leptos_axum::ResponseOptions;
use tower_http::set_header::SetResponseHeaderLayer;

/// For everything that is not an HTML page (API, static files): nothing may run or frame.
const STRICT_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// The policy of a rendered page. Scripts run only with this response's nonce (Leptos puts
/// it on its hydration script), WASM may compile, and nothing else is allowed in.
pub fn page_csp(nonce: &str, live_reload: bool) -> String {
    // `cargo leptos watch` reloads the page through a WebSocket on a port of its own.
    let connect = if live_reload {
        "'self' ws: wss:"
    } else {
        "'self'"
    };
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src {connect}; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// Runs inside every Leptos render (as its additional context): the request's nonce is
/// already in context, so the page's policy is set on the same response.
pub fn provide_page_csp(live_reload: bool) {
    if let (Some(nonce), Some(response)) = (use_nonce(), use_context::<ResponseOptions>()) {
        if let Ok(value) = HeaderValue::from_str(&page_csp(&nonce, live_reload)) {
            response.insert_header(header::CONTENT_SECURITY_POLICY, value);
        }
    }
}

/// Headers for every response; the CSP only where the page did not set its own.
pub fn with_security_headers<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(STRICT_CSP),
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_policy_allows_only_the_nonce_for_scripts() {
        let csp = page_csp("abc123", false);
        assert!(csp.contains("script-src 'self' 'nonce-abc123' 'wasm-unsafe-eval';"));
        assert!(!csp.contains("unsafe-inline"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(csp.contains("connect-src 'self';"));
        assert!(page_csp("n", true).contains("connect-src 'self' ws: wss:;"));
    }
}
