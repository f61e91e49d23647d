//! The `Origin` rule of the cookie endpoints (refresh, logout). `SameSite=Strict` already
//! keeps the cookie off cross-site requests; this refuses them outright, before any token
//! is read, so a refused request never consumes one.

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

/// Reduces a URL to its origin (`scheme://host[:port]`, lowercase, default port dropped),
/// the form browsers send in `Origin`.
pub fn parse_origin(value: &str) -> Result<String, String> {
    let value = value.trim();
    let (scheme, rest) = value
        .split_once("://")
        .ok_or_else(|| "expected a URL such as https://example.com".to_string())?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return Err("the scheme must be http or https".into()),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') || authority.contains(char::is_whitespace) {
        return Err("expected a host".into());
    }
    let authority = authority.to_ascii_lowercase();
    let (host, port) = match authority.strip_prefix('[') {
        Some(inner) => {
            let (ip, after) = inner.split_once(']').ok_or("unclosed IPv6 bracket")?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or("unexpected text after the host")?,
                ),
            };
            (format!("[{ip}]"), port)
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (authority.clone(), None),
        },
    };
    if host.is_empty() || host == "[]" {
        return Err("expected a host".into());
    }
    let authority = match port {
        None => host,
        Some(p) if p.parse::<u16>().is_err() => return Err("the port must be a number".into()),
        Some(p) if p == default_port => host,
        Some(p) => format!("{host}:{p}"),
    };
    Ok(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised() {
        assert_eq!(
            parse_origin("HTTP://Example.COM:80/path?q").unwrap(),
            "http://example.com"
        );
        assert_eq!(
            parse_origin("http://127.0.0.1:3000").unwrap(),
            "http://127.0.0.1:3000"
        );
        assert_eq!(
            parse_origin("http://[::1]:3000").unwrap(),
            "http://[::1]:3000"
        );
        assert_eq!(parse_origin("https://[::1]").unwrap(), "https://[::1]");
        assert!(parse_origin("https://user@example.com").is_err());
        assert!(parse_origin("https://example.com:http").is_err());
        assert!(parse_origin("https://").is_err());
    }

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
