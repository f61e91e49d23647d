//! The `Origin` rule of the cookie endpoints (refresh, logout). `SameSite=Strict` already
//! keeps the cookie off cross-site requests; this refuses them outright, before any token
//! is read, so a refused request never consumes one.

use crate::config::parse_origin;

/// What a request says about where it comes from.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestOrigin<'a> {
    /// The `Origin` header.
    pub origin: Option<&'a str>,
    /// The `Sec-Fetch-Site` header.
    pub fetch_site: Option<&'a str>,
    /// The host and port the request was addressed to (`Host`).
    pub host: Option<&'a str>,
}

/// True when the request may use the refresh cookie. `trusted` holds the origins allowed
/// besides the one the request was addressed to (normalised: `PUBLIC_URL`'s origin and
/// `ALLOWED_ORIGINS`).
pub fn origin_allowed(request: RequestOrigin<'_>, trusted: &[String]) -> bool {
    let Some(origin) = request.origin else {
        // No Origin: only a browser's own word that the request is cross-site refuses it.
        return request.fetch_site != Some("cross-site");
    };
    // `Origin: null` (sandboxed frames, some redirects) fails to parse and is refused.
    let Ok(origin) = parse_origin(origin) else {
        return false;
    };
    if trusted.contains(&origin) {
        return true;
    }
    // The host and port the request was addressed to, whatever the scheme in front of us.
    let scheme = origin.split_once("://").map_or("http", |(s, _)| s);
    request
        .host
        .and_then(|host| parse_origin(&format!("{scheme}://{host}")).ok())
        .is_some_and(|addressed| addressed == origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(headers: &[(&str, &str)], trusted: &[String]) -> bool {
        let get = |name: &str| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        origin_allowed(
            RequestOrigin {
                origin: get("origin"),
                fetch_site: get("sec-fetch-site"),
                host: get("host"),
            },
            trusted,
        )
    }

    fn settings() -> Vec<String> {
        vec!["https://app.example".into(), "https://admin.example".into()]
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
            assert!(allowed(&headers, &s), "{headers:?}");
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
            assert!(!allowed(&headers, &s), "{headers:?}");
        }
    }
}
