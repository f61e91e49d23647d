//! The `Origin` rule of the cookie endpoints (refresh, logout). `SameSite=Strict` already
//! keeps the cookie off cross-site requests; this refuses them outright, before any token
//! is read, so a refused request never consumes one.

use crate::config::{parse_origin, Settings};
use axum::http::{header, request::Parts};

/// True when the request may use the refresh cookie.
pub fn origin_allowed(parts: &Parts, settings: &Settings) -> bool {
    let Some(origin) = parts.headers.get(header::ORIGIN) else {
        // No Origin: only a browser's own word that the request is cross-site refuses it.
        return parts
            .headers
            .get("sec-fetch-site")
            .is_none_or(|v| v.as_bytes() != b"cross-site");
    };
    // `Origin: null` (sandboxed frames, some redirects) fails to parse and is refused.
    let Some(origin) = origin.to_str().ok().and_then(|o| parse_origin(o).ok()) else {
        return false;
    };
    if origin == settings.public_url || settings.allowed_origins.contains(&origin) {
        return true;
    }
    // The host and port the request was addressed to, whatever the scheme in front of us.
    let addressed = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()));
    let scheme = origin.split_once("://").map_or("http", |(s, _)| s);
    addressed
        .and_then(|host| parse_origin(&format!("{scheme}://{host}")).ok())
        .is_some_and(|addressed| addressed == origin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut request = Request::builder().uri("/api/auth/refresh");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request.body(()).unwrap().into_parts().0
    }

    fn settings() -> Settings {
        Settings::from_lookup(|name| match name {
            "PUBLIC_URL" => Some("https://app.example".into()),
            "ALLOWED_ORIGINS" => Some("https://admin.example".into()),
            // A public PUBLIC_URL needs a mail choice; these tests send none.
            "SMTP_URL" => Some("log".into()),
            _ => None,
        })
        .unwrap()
    }

    #[test]
    fn same_host_public_url_and_allowed_origins_pass() {
        let s = settings();
        for headers in [
            vec![
                ("host", "127.0.0.1:3000"),
                ("origin", "http://127.0.0.1:3000"),
            ],
            vec![
                ("host", "localhost:3000"),
                ("origin", "http://localhost:3000"),
            ],
            // Behind a TLS-terminating proxy the Host has no port and the Origin is https.
            vec![("host", "auth.example"), ("origin", "https://auth.example")],
            vec![("host", "internal:8080"), ("origin", "https://app.example")],
            vec![
                ("host", "internal:8080"),
                ("origin", "https://admin.example"),
            ],
            vec![("host", "internal:8080")],
            vec![("host", "internal:8080"), ("sec-fetch-site", "same-origin")],
        ] {
            assert!(origin_allowed(&parts(&headers), &s), "{headers:?}");
        }
    }

    #[test]
    fn foreign_origins_are_refused() {
        let s = settings();
        for headers in [
            vec![
                ("host", "127.0.0.1:3000"),
                ("origin", "http://evil.example"),
            ],
            vec![
                ("host", "127.0.0.1:3000"),
                ("origin", "http://127.0.0.1:3001"),
            ],
            vec![("host", "127.0.0.1:3000"), ("origin", "null")],
            vec![
                ("host", "127.0.0.1:3000"),
                ("origin", "https://app.example.evil"),
            ],
            vec![("origin", "http://127.0.0.1:3000")],
            vec![("host", "127.0.0.1:3000"), ("sec-fetch-site", "cross-site")],
        ] {
            assert!(!origin_allowed(&parts(&headers), &s), "{headers:?}");
        }
    }
}
