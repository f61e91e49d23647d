//! The decisions of the browser auth runtime, as plain Rust: what to do with an answer,
//! what a refresh's answer means, when to refresh, where to go after sign-in; and what
//! tabs tell each other, as they write it. No browser API here, so `cargo test` runs it natively.

pub use crate::api::next::{after_sign_in, safe_next, ARRIVED};
use crate::api::{encode::percent_encode, ErrorCode, Session, User};
use serde::{Deserialize, Serialize};

/// What a call does after an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Hand the answer to the caller (success, or an error that refreshing cannot fix).
    Deliver,
    /// Refresh the access token (once, shared with concurrent calls), then retry once. (The
    /// runtime first sends the call again without refreshing when the tab already holds a
    /// newer token than the one refused.)
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
    /// No answer, or the server's trouble (offline, 5xx, 429): keep the session, say
    /// "Reconnecting…" and try again later. Never a reason to sign anyone out.
    Unreachable,
    /// The answer came after a sign-in or sign-out of this browser (in any tab): it belongs
    /// to a session that is over, and is dropped.
    Superseded,
}

/// What a refresh's answer means: its status, and the error code of its body. Only the
/// server's word that the session is over (401 `refresh_*`, 403 `account_disabled`) ends
/// it; anything else (a proxy's 401, a 5xx, no answer) is a server to try again later.
pub fn after_refresh(status: Option<u16>, code: Option<ErrorCode>) -> RefreshOutcome {
    match (status, code) {
        (Some(200), _) => RefreshOutcome::Renewed,
        (
            Some(401),
            Some(
                ErrorCode::RefreshMissing
                | ErrorCode::RefreshInvalid
                | ErrorCode::RefreshExpired
                | ErrorCode::RefreshReused,
            ),
        )
        | (Some(403), Some(ErrorCode::AccountDisabled)) => RefreshOutcome::Ended,
        _ => RefreshOutcome::Unreachable,
    }
}

/// The longest wait a `Retry-After` of the server may ask for (five minutes): a person
/// looking at "Reconnecting…" should not wait longer for a retry.
pub const MAX_RETRY_AFTER_SECS: u32 = 300;

/// Milliseconds before the `attempt`-th retry (from 0) of a refresh that found no server:
/// 1 s, doubling, at most 30 s; `jitter` in [0, 1) takes up to half of it off, so the tabs
/// of many browsers that lost the server together do not come back in the same instant.
/// Never sooner than the server's `Retry-After` (in seconds), up to five minutes.
pub fn reconnect_delay_ms(attempt: u32, jitter: f64, retry_after_secs: Option<u32>) -> u32 {
    let backoff = 1_000u32.saturating_mul(1 << attempt.min(5)).min(30_000);
    let jittered = (f64::from(backoff) * (1.0 - 0.5 * jitter.clamp(0.0, 1.0))) as u32;
    let asked = retry_after_secs
        .unwrap_or(0)
        .min(MAX_RETRY_AFTER_SECS)
        .saturating_mul(1_000);
    jittered.max(asked)
}

/// The delay-seconds form of a `Retry-After` header (its date form is not used by this
/// server, and is ignored).
pub fn retry_after_secs(header: Option<&str>) -> Option<u32> {
    header?.trim().parse().ok()
}

/// The claims of an access token this runtime reads (it never verifies them: the server
/// does): who, and until when.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct TokenClaims {
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
}

/// The claims of a JWT's payload, or `None` when it is not one.
pub fn token_claims(jwt: &str) -> Option<TokenClaims> {
    let payload = jwt.split('.').nth(1)?;
    // Read from text, as every other JSON in the WASM is: reading from bytes would bring
    // a second copy of the JSON reader.
    let text = String::from_utf8(base64url_decode(payload)?).ok()?;
    serde_json::from_str(&text).ok()
}

/// Unpadded base64url (RFC 4648 §5), as JWTs use it.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.as_bytes().chunks(4) {
        let mut bits = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            bits |= value(*c)? << (18 - 6 * i);
        }
        let bytes = bits.to_be_bytes();
        match chunk.len() {
            4 => out.extend_from_slice(&bytes[1..4]),
            3 => out.extend_from_slice(&bytes[1..3]),
            2 => out.push(bytes[1]),
            _ => return None,
        }
    }
    Some(out)
}

/// Whether a refresh that waited for the lock finds the session renewed meanwhile (another
/// tab refreshed, or someone signed in), or whether a call's 401 was for a token the tab no
/// longer holds: the tab holds another token than `before`. Told by the token itself, not by
/// the time it came: a page clock that stands still or steps back, or a token taken within
/// the same millisecond, would hide it.
pub fn renewed_since(before: Option<&str>, now: Option<&str>) -> bool {
    now.is_some_and(|now| Some(now) != before)
}

/// The longest access-token lifetime another tab may hand us (a day): anything longer is
/// not from this server.
pub const MAX_SHARED_EXPIRES_IN: u64 = 24 * 60 * 60;

/// What a tab knows when another tab offers it a session.
#[derive(Clone, Debug)]
pub struct Offer<'a> {
    /// The sign-in epoch the session was obtained in, and this browser's epoch now.
    pub epoch: u64,
    pub current_epoch: u64,
    pub expires_in: u64,
    /// The offered token's claims (`None`: not a JWT).
    pub claims: Option<TokenClaims>,
    /// The claims of the token this tab holds, if any.
    pub held: Option<&'a TokenClaims>,
}

/// Whether to adopt a session another tab sent: from the current sign-in, with a sane
/// lifetime, a token this runtime can read, of the person already signed in here (a new
/// person comes with a new epoch), and not older than the token held.
pub fn adopt_offer(offer: &Offer<'_>) -> bool {
    let Some(claims) = &offer.claims else {
        return false;
    };
    let fresh = offer.epoch >= offer.current_epoch;
    let sane = (1..=MAX_SHARED_EXPIRES_IN).contains(&offer.expires_in) && claims.exp > claims.iat;
    let same_person_or_new_epoch = offer
        .held
        .is_none_or(|held| held.sub == claims.sub || offer.epoch > offer.current_epoch);
    // Strictly newer: the same token again (every hello's answer) changes nothing.
    // (Only for the same person: another person's token may share the second.)
    let not_older = offer
        .held
        .is_none_or(|held| held.sub != claims.sub || claims.exp > held.exp);
    fresh && sane && same_person_or_new_epoch && not_older
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

/// True on the login page, which the router serves at `/login` and `/login/` alike.
pub fn is_login_page(path: &str) -> bool {
    path == "/login" || path == "/login/"
}

/// The login page coming back to `next_path` (percent-encoded, its slashes kept readable).
pub fn login_url(next_path: &str) -> String {
    format!(
        "/login?next={}",
        percent_encode(next_path).replace("%2F", "/")
    )
}

/// What tabs tell each other. The `epoch` of a message is `None` when it comes from a tab
/// still running the version before epochs existed (a tab opened before a deploy keeps its
/// code): its sign-outs count as of the current epoch, its sessions are not taken (that
/// version accepts late refresh answers). Variants a version does not know are dropped.
///
/// Read through [`TabWire`], not as the tagged enum it is written as: serde reads a tagged
/// enum by buffering the whole message into a tree first, code that made up about a
/// tenth of the main WASM for this one type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", try_from = "TabWire")]
pub enum TabMessage {
    /// A tab obtained a session (a refresh or a sign-in) in sign-in `epoch`: the others
    /// adopt it.
    Session {
        session: Session,
        #[serde(default)]
        epoch: Option<u64>,
    },
    /// The signed-in person's details changed (a verified email): every tab shows them.
    Person {
        user: User,
        #[serde(default)]
        epoch: Option<u64>,
    },
    /// A tab signed out, or learned that the session of `epoch` ended: every tab forgets it.
    SignedOut {
        #[serde(default)]
        epoch: Option<u64>,
    },
    /// A tab that just opened asks whether another holds a live session.
    Hello,
    /// A tab's refresh found no server, and it tries again in `retry_in_ms`: the other
    /// tabs hold their own tries back until then, so the tabs of a browser ask the server
    /// once a round rather than once each.
    Unreachable { epoch: u64, retry_in_ms: u32 },
}

/// Every field any message has, as the JSON of a [`TabMessage`] holds them. These names keep
/// these types in every message of every version: a message with one of them in another
/// shape is dropped whole, whatever its type.
#[derive(Deserialize)]
struct TabWire {
    #[serde(rename = "type")]
    kind: String,
    session: Option<Session>,
    user: Option<User>,
    epoch: Option<u64>,
    retry_in_ms: Option<u32>,
}

impl TryFrom<TabWire> for TabMessage {
    type Error = &'static str;

    fn try_from(wire: TabWire) -> Result<Self, Self::Error> {
        let TabWire {
            kind,
            session,
            user,
            epoch,
            retry_in_ms,
        } = wire;
        Ok(match (kind.as_str(), session, user, retry_in_ms) {
            ("session", Some(session), ..) => TabMessage::Session { session, epoch },
            ("person", _, Some(user), _) => TabMessage::Person { user, epoch },
            ("signed_out", ..) => TabMessage::SignedOut { epoch },
            ("hello", ..) => TabMessage::Hello,
            ("unreachable", _, _, Some(retry_in_ms)) => TabMessage::Unreachable {
                epoch: epoch.ok_or("no epoch")?,
                retry_in_ms,
            },
            _ => return Err("a message this version does not know"),
        })
    }
}

impl TabMessage {
    /// A message as another tab sent it, or `None` when it is none this version knows.
    pub fn read(text: &str) -> Option<TabMessage> {
        serde_json::from_str(text).ok()
    }

    /// The message as it goes to the other tabs.
    pub fn write(&self) -> Option<String> {
        serde_json::to_string(self).ok()
    }
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
        assert_eq!(after_refresh(Some(200), None), RefreshOutcome::Renewed);
        for code in [
            ErrorCode::RefreshMissing,
            ErrorCode::RefreshInvalid,
            ErrorCode::RefreshExpired,
            ErrorCode::RefreshReused,
        ] {
            assert_eq!(after_refresh(Some(401), Some(code)), RefreshOutcome::Ended);
        }
        assert_eq!(
            after_refresh(Some(403), Some(ErrorCode::AccountDisabled)),
            RefreshOutcome::Ended
        );
        assert_eq!(
            after_refresh(Some(401), None),
            RefreshOutcome::Unreachable,
            "a proxy's 401"
        );
        assert_eq!(
            after_refresh(Some(403), Some(ErrorCode::OriginForbidden)),
            RefreshOutcome::Unreachable
        );
        assert_eq!(
            after_refresh(Some(429), Some(ErrorCode::RateLimited)),
            RefreshOutcome::Unreachable
        );
        assert_eq!(
            after_refresh(Some(503), Some(ErrorCode::Overloaded)),
            RefreshOutcome::Unreachable
        );
        assert_eq!(after_refresh(None, None), RefreshOutcome::Unreachable);
    }

    #[test]
    fn reconnecting_backs_off_to_thirty_seconds() {
        assert_eq!(reconnect_delay_ms(0, 0.0, None), 1_000);
        assert_eq!(reconnect_delay_ms(1, 0.0, None), 2_000);
        assert_eq!(reconnect_delay_ms(4, 0.0, None), 16_000);
        assert_eq!(reconnect_delay_ms(5, 0.0, None), 30_000);
        assert_eq!(reconnect_delay_ms(40, 0.0, None), 30_000);
    }

    #[test]
    fn reconnect_delays_are_spread_by_jitter_over_their_upper_half() {
        assert_eq!(reconnect_delay_ms(0, 0.5, None), 750);
        assert_eq!(reconnect_delay_ms(2, 0.999_999, None), 2_000);
        assert_eq!(reconnect_delay_ms(5, 1.0, None), 15_000);
        // Out-of-range jitter is clamped, never a zero or a negative delay.
        assert_eq!(reconnect_delay_ms(0, 7.0, None), 500);
        assert_eq!(reconnect_delay_ms(0, -1.0, None), 1_000);
    }

    #[test]
    fn a_retry_after_is_a_floor_of_up_to_five_minutes() {
        assert_eq!(reconnect_delay_ms(0, 0.0, Some(4)), 4_000);
        // A shorter Retry-After than the backoff changes nothing.
        assert_eq!(reconnect_delay_ms(3, 0.0, Some(1)), 8_000);
        assert_eq!(reconnect_delay_ms(0, 0.0, Some(86_400)), 300_000);
        assert_eq!(retry_after_secs(Some(" 12 ")), Some(12));
        assert_eq!(
            retry_after_secs(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
        assert_eq!(retry_after_secs(None), None);
    }

    /// A JWT with this payload (header and signature are not read).
    fn jwt(payload: &str) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut encoded = String::new();
        for chunk in payload.as_bytes().chunks(3) {
            let mut bits = 0u32;
            for (i, b) in chunk.iter().enumerate() {
                bits |= (*b as u32) << (16 - 8 * i);
            }
            for i in 0..=chunk.len() {
                encoded.push(ALPHABET[((bits >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        format!("eyJhbGciOiJFZERTQSJ9.{encoded}.c2ln")
    }

    #[test]
    fn token_claims_are_read_from_the_payload() {
        for payload in [
            r#"{"sub":"u1","iat":100,"exp":1000}"#,
            r#"{"sub":"u1","iat":100,"exp":1000,"x":1}"#,
            r#"{"sub":"u1","iat":100,"exp":1000,"xy":1}"#,
        ] {
            assert_eq!(
                token_claims(&jwt(payload)),
                Some(TokenClaims {
                    sub: "u1".into(),
                    iat: 100,
                    exp: 1000
                }),
                "{payload}"
            );
        }
        assert_eq!(token_claims("not a jwt"), None);
        assert_eq!(token_claims("a.!!!.c"), None);
        assert_eq!(token_claims(&jwt(r#"{"sub":"u1"}"#)), None);
    }

    fn claims(sub: &str, iat: i64, exp: i64) -> TokenClaims {
        TokenClaims {
            sub: sub.into(),
            iat,
            exp,
        }
    }

    #[test]
    fn offers_from_other_tabs_are_checked() {
        let held = claims("ada", 100, 1000);
        let offer = |epoch, expires_in, offered: Option<TokenClaims>, held| Offer {
            epoch,
            current_epoch: 3,
            expires_in,
            claims: offered,
            held,
        };
        let newer = Some(claims("ada", 200, 1100));
        assert!(adopt_offer(&offer(3, 900, newer.clone(), Some(&held))));
        assert!(
            !adopt_offer(&offer(3, 900, Some(held.clone()), Some(&held))),
            "the same token again"
        );
        assert!(adopt_offer(&offer(3, 900, newer.clone(), None)));
        assert!(
            !adopt_offer(&offer(2, 900, newer.clone(), Some(&held))),
            "an older sign-in"
        );
        assert!(
            !adopt_offer(&offer(3, 0, newer.clone(), None)),
            "no lifetime"
        );
        assert!(
            !adopt_offer(&offer(3, 10 * MAX_SHARED_EXPIRES_IN, newer.clone(), None)),
            "an absurd lifetime"
        );
        assert!(!adopt_offer(&offer(3, 900, None, None)), "not a token");
        assert!(
            !adopt_offer(&offer(3, 900, Some(claims("ada", 50, 900)), Some(&held))),
            "older than the one held"
        );
        assert!(
            !adopt_offer(&offer(3, 900, Some(claims("bob", 200, 1100)), Some(&held))),
            "another person in the same sign-in"
        );
        assert!(
            adopt_offer(&offer(4, 900, Some(claims("bob", 200, 1100)), Some(&held))),
            "another person after a new sign-in"
        );
        assert!(
            adopt_offer(&offer(4, 900, Some(claims("bob", 100, 1000)), Some(&held))),
            "another person's token of the same second, after a new sign-in"
        );
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
    fn the_login_page_is_known_by_both_its_paths() {
        assert!(is_login_page("/login"));
        // Comparing with "/login" alone sent a person on `/login/` whose call failed to
        // `/login?next=/login/`.
        assert!(is_login_page("/login/"));
        assert!(!is_login_page("/login/x"));
        assert!(!is_login_page("/logins"));
        assert!(!is_login_page("/account"));
    }

    #[test]
    fn login_urls_encode_the_path() {
        assert_eq!(login_url("/account"), "/login?next=/account");
        assert_eq!(login_url("/a?b=c&d"), "/login?next=/a%3Fb%3Dc%26d");
    }

    #[test]
    fn a_session_is_renewed_when_another_token_is_held_whenever_it_came() {
        // Another tab's token, or a sign-in's, taken while this tab waited.
        assert!(renewed_since(Some("old"), Some("new")));
        assert!(renewed_since(None, Some("new")));
        // Still the token held before, even adopted again: nothing new.
        assert!(!renewed_since(Some("old"), Some("old")));
        // Signed out meanwhile: nothing to use.
        assert!(!renewed_since(Some("old"), None));
        assert!(!renewed_since(None, None));
    }

    fn a_person() -> User {
        User {
            id: "u1".into(),
            email: "ada@example.com".into(),
            name: "Ada".into(),
            role: crate::api::Role::User,
            email_verified: true,
            created_at: "2026-11-29T12:00:00Z".into(),
        }
    }

    const PERSON: &str = r#"{"id":"u1","email":"ada@example.com","name":"Ada","role":"user","email_verified":true,"created_at":"2026-11-29T12:00:00Z"}"#;

    /// Tabs of other versions read these messages: their text is fixed.
    #[test]
    fn tab_messages_are_written_as_every_version_reads_them() {
        let session = Session {
            user: a_person(),
            access_token: "t".into(),
            token_type: "Bearer".into(),
            expires_in: 900,
            refresh_token: None,
        };
        let cases = [
            (
                TabMessage::Session {
                    session,
                    epoch: Some(7),
                },
                format!(
                    r#"{{"type":"session","session":{{"user":{PERSON},"access_token":"t","token_type":"Bearer","expires_in":900}},"epoch":7}}"#
                ),
            ),
            (
                TabMessage::Person {
                    user: a_person(),
                    epoch: Some(8),
                },
                format!(r#"{{"type":"person","user":{PERSON},"epoch":8}}"#),
            ),
            (
                TabMessage::SignedOut { epoch: Some(9) },
                r#"{"type":"signed_out","epoch":9}"#.to_string(),
            ),
            (TabMessage::Hello, r#"{"type":"hello"}"#.to_string()),
            (
                TabMessage::Unreachable {
                    epoch: 10,
                    retry_in_ms: 250,
                },
                r#"{"type":"unreachable","epoch":10,"retry_in_ms":250}"#.to_string(),
            ),
        ];
        for (message, text) in cases {
            assert_eq!(message.write().as_deref(), Some(text.as_str()));
            assert_eq!(TabMessage::read(&text), Some(message));
        }
    }

    #[test]
    fn tab_messages_of_a_version_before_epochs_are_read_without_one() {
        assert_eq!(
            TabMessage::read(r#"{"type":"signed_out"}"#),
            Some(TabMessage::SignedOut { epoch: None })
        );
        assert_eq!(
            TabMessage::read(&format!(r#"{{"user":{PERSON},"type":"person"}}"#)),
            Some(TabMessage::Person {
                user: a_person(),
                epoch: None
            })
        );
        // Fields a version does not know are passed over.
        assert_eq!(
            TabMessage::read(r#"{"type":"hello","from":"a newer tab"}"#),
            Some(TabMessage::Hello)
        );
    }

    #[test]
    fn tab_messages_this_version_does_not_know_are_dropped() {
        for text in [
            r#"{"type":"welcome","epoch":1}"#,
            r#"{"epoch":1}"#,
            r#"{"type":"unreachable","epoch":1}"#,
            r#"{"type":"person","epoch":1}"#,
            r#"{"type":"session","session":{"access_token":"t"},"epoch":1}"#,
            r#"{"type":7}"#,
            "not JSON",
        ] {
            assert_eq!(TabMessage::read(text), None, "{text}");
        }
    }
}
