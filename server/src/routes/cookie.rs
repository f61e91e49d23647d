//! The refresh cookie, exactly as the contract spells it, and the flow cookie of a sign-in
//! at an identity provider.

use axum::http::{header, HeaderMap, HeaderValue};

pub const NAME: &str = "refresh_token";
const ATTRIBUTES: &str = "HttpOnly; SameSite=Strict; Path=/api/auth";

fn build(value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    // Tokens are base64url, so this never fails; were it to, the answer clears the cookie.
    HeaderValue::from_str(&format!(
        "{NAME}={value}; {ATTRIBUTES}{secure}; Max-Age={max_age}"
    ))
    .unwrap_or_else(|_| {
        HeaderValue::from_static(
            "refresh_token=; HttpOnly; SameSite=Strict; Path=/api/auth; Max-Age=0",
        )
    })
}

/// Sets the token for `max_age` seconds.
pub fn set(token: &str, max_age: i64, secure: bool) -> HeaderValue {
    build(token, max_age.max(0), secure)
}

/// Same name and path with `Max-Age=0`.
pub fn clear(secure: bool) -> HeaderValue {
    build("", 0, secure)
}

/// The token from the request's `Cookie` headers, if any.
pub fn read(headers: &HeaderMap) -> Option<String> {
    read_named(headers, NAME)
}

fn read_named(headers: &HeaderMap, wanted: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == wanted && !value.is_empty())
        .map(|(_, value)| value.to_string())
}

/// The flow cookie: `Lax`, since the provider's redirect back to the callback is a
/// top-level navigation from another site, which a `Strict` cookie would not follow. Named
/// `__Secure-…` when `Secure`: then no plain-HTTP page can plant one of its own (a flow of
/// the attacker's, which would sign the browser into their account). An HTTPS site of a
/// sibling subdomain still could (only `__Host-` forbids that, and it needs `Path=/`): run
/// the app on a host whose sibling subdomains are all trusted.
fn flow_name(secure: bool) -> &'static str {
    if secure {
        "__Secure-oidc_flow"
    } else {
        "oidc_flow"
    }
}
const FLOW_ATTRIBUTES: &str = "HttpOnly; SameSite=Lax; Path=/api/auth/oidc";

fn build_flow(value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let name = flow_name(secure);
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; {FLOW_ATTRIBUTES}{secure}; Max-Age={max_age}"
    ))
    .unwrap_or_else(|_| {
        HeaderValue::from_static(
            "oidc_flow=; HttpOnly; SameSite=Lax; Path=/api/auth/oidc; Max-Age=0",
        )
    })
}

pub fn set_flow(token: &str, max_age: i64, secure: bool) -> HeaderValue {
    build_flow(token, max_age.max(0), secure)
}

pub fn clear_flow(secure: bool) -> HeaderValue {
    build_flow("", 0, secure)
}

/// The flow token, from the cookie of this server's mode (`COOKIE_SECURE`).
pub fn read_flow(headers: &HeaderMap, secure: bool) -> Option<String> {
    read_named(headers, flow_name(secure))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_has_the_contract_attributes() {
        assert_eq!(
            set("abc", 60, true).to_str().unwrap(),
            "refresh_token=abc; HttpOnly; SameSite=Strict; Path=/api/auth; Secure; Max-Age=60"
        );
        assert_eq!(
            clear(false).to_str().unwrap(),
            "refresh_token=; HttpOnly; SameSite=Strict; Path=/api/auth; Max-Age=0"
        );
    }

    #[test]
    fn the_token_is_read_among_other_cookies() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; refresh_token=tok; b=2"),
        );
        assert_eq!(read(&headers).as_deref(), Some("tok"));
        let mut empty = HeaderMap::new();
        empty.append(header::COOKIE, HeaderValue::from_static("refresh_token="));
        assert_eq!(read(&empty), None);
        assert_eq!(read(&HeaderMap::new()), None);
    }
}
