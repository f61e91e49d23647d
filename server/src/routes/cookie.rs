//! The refresh cookie, exactly as the contract spells it.

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
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == NAME && !value.is_empty())
        .map(|(_, value)| value.to_string())
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
