//! The decisions of the browser auth runtime, as plain Rust: what to do with an answer,
//! what a refresh's answer means, when to refresh, where to go after sign-in. No browser API here, so `cargo test` runs it natively.

use crate::api::{encode::percent_encode, ErrorCode};

/// What a call does after an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Hand the answer to the caller (success, or an error that refreshing cannot fix).
    Deliver,
    /// Refresh the access token (once, shared with concurrent calls), then retry once.
    RefreshThenRetry,
    /// The session is over: forget the token and send the person to sign in.
    SignOut,
}

/// Decides after an answer with `status` (and the error code of its body, if any).
/// `retried` is true when this answer is to the retry: never a second retry, never a loop.
pub fn after_answer(status: u16, code: Option<ErrorCode>, retried: bool) -> Next {
    let access_token_problem = status == 401
        && matches!(
            code,
            Some(ErrorCode::TokenExpired | ErrorCode::TokenInvalid | ErrorCode::TokenMissing)
        );
    match (access_token_problem, retried) {
        (true, false) => Next::RefreshThenRetry,
        (true, true) => Next::SignOut,
        (false, _) => Next::Deliver,
    }
}

/// The outcome of a refresh, as the runtime sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// A new access token.
    Renewed,
    /// The server refused the session (401 refresh_* or 403): sign out.
    Ended,
    /// No answer (offline, server down): keep the session, report the failure.
    Unreachable,
}

pub fn after_refresh(status: Option<u16>) -> RefreshOutcome {
    match status {
        Some(200) => RefreshOutcome::Renewed,
        Some(401 | 403) => RefreshOutcome::Ended,
        Some(_) | None => RefreshOutcome::Unreachable,
    }
}

/// Milliseconds until a proactive refresh: between 75 % and 85 % of the token's lifetime,
/// `jitter` in [0, 1) choosing where, so many tabs do not refresh in the same instant.
pub fn proactive_delay_ms(expires_in_secs: u64, jitter: f64) -> u64 {
    let fraction = 0.75 + 0.10 * jitter.clamp(0.0, 0.999_999);
    (expires_in_secs as f64 * 1000.0 * fraction) as u64
}

/// True when a token obtained at `obtained_ms` for `expires_in_secs` is past the point
/// where it should have been refreshed (a tab coming back from sleep or the background).
pub fn refresh_due(obtained_ms: f64, expires_in_secs: u64, now_ms: f64) -> bool {
    now_ms - obtained_ms >= expires_in_secs as f64 * 1000.0 * 0.75
}

/// Where to go after signing in: `next` when it is a path of this site, else `/account`.
/// Refuses what a browser would take to another site: `//evil.example`, `/\evil`,
/// `https://…`, and control characters that browsers strip.
pub fn safe_next(next: Option<&str>) -> String {
    const FALLBACK: &str = "/account";
    let Some(next) = next else {
        return FALLBACK.into();
    };
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\')
        && !next.contains("://");
    if ok {
        next.into()
    } else {
        FALLBACK.into()
    }
}

/// The login page coming back to `next_path` (percent-encoded, its slashes kept readable).
pub fn login_url(next_path: &str) -> String {
    format!(
        "/login?next={}",
        percent_encode(next_path).replace("%2F", "/")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_or_invalid_token_refreshes_once_then_signs_out() {
        for code in [
            ErrorCode::TokenExpired,
            ErrorCode::TokenInvalid,
            ErrorCode::TokenMissing,
        ] {
            assert_eq!(after_answer(401, Some(code), false), Next::RefreshThenRetry);
            assert_eq!(after_answer(401, Some(code), true), Next::SignOut);
        }
    }

    #[test]
    fn other_answers_are_delivered_as_they_are() {
        assert_eq!(after_answer(200, None, false), Next::Deliver);
        assert_eq!(after_answer(200, None, true), Next::Deliver);
        assert_eq!(
            after_answer(401, Some(ErrorCode::InvalidCredentials), false),
            Next::Deliver
        );
        assert_eq!(
            after_answer(403, Some(ErrorCode::Forbidden), false),
            Next::Deliver
        );
        assert_eq!(
            after_answer(500, Some(ErrorCode::Internal), false),
            Next::Deliver
        );
        assert_eq!(after_answer(401, None, false), Next::Deliver);
    }

    #[test]
    fn refresh_outcomes() {
        assert_eq!(after_refresh(Some(200)), RefreshOutcome::Renewed);
        assert_eq!(after_refresh(Some(401)), RefreshOutcome::Ended);
        assert_eq!(after_refresh(Some(403)), RefreshOutcome::Ended);
        assert_eq!(after_refresh(Some(503)), RefreshOutcome::Unreachable);
        assert_eq!(after_refresh(None), RefreshOutcome::Unreachable);
    }

    #[test]
    fn proactive_refresh_lands_between_75_and_85_percent() {
        assert_eq!(proactive_delay_ms(900, 0.0), 675_000);
        assert_eq!(proactive_delay_ms(900, 0.5), 720_000);
        assert!(proactive_delay_ms(900, 1.0) < 765_000);
        assert!(proactive_delay_ms(900, -3.0) >= 675_000);
        assert!(!refresh_due(0.0, 100, 74_999.0));
        assert!(refresh_due(0.0, 100, 75_000.0));
    }

    #[test]
    fn next_accepts_same_site_paths_only() {
        assert_eq!(safe_next(Some("/account")), "/account");
        assert_eq!(safe_next(Some("/a/b?c=d#e")), "/a/b?c=d#e");
        for bad in [
            "//evil.example",
            "/\\evil",
            "https://evil.example",
            "http:/evil",
            "evil",
            "",
            "/\t/evil.example",
            "/x?u=https://evil.example",
            "javascript:alert(1)",
        ] {
            assert_eq!(safe_next(Some(bad)), "/account", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/account");
    }

    #[test]
    fn login_urls_encode_the_path() {
        assert_eq!(login_url("/account"), "/login?next=/account");
        assert_eq!(login_url("/a?b=c&d"), "/login?next=/a%3Fb%3Dc%26d");
    }
}
