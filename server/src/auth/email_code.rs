//! The rules of email verification codes, apart from HTTP and SQL: six digits, valid ten
//! minutes, at most five tries a code and twenty a day, a new one at most once a minute.
//! Codes are stored only as keyed digests (an unkeyed hash of a million possible values is
//! no protection).

use super::tokens::ServerSecret;
use rand::Rng;

pub const TTL_SECS: i64 = 10 * 60;
pub const MAX_ATTEMPTS: i64 = 5;
pub const RESEND_INTERVAL_SECS: i64 = 60;
/// Tries a person may make in a day whatever the number of codes, so new codes do not
/// renew the guesses: at most 20 in a million a day.
pub const DAILY_ATTEMPTS: i64 = 20;
pub const DAY_SECS: i64 = 24 * 60 * 60;

/// A fresh code: six decimal digits, uniformly drawn.
pub fn generate(rng: &mut impl Rng) -> String {
    format!("{:06}", rng.random_range(0..1_000_000u32))
}

/// The stored form of `code` for `user_id` (bound to the person, so a digest cannot be
/// replayed for another account).
pub fn digest(secret: &ServerSecret, user_id: &str, code: &str) -> String {
    secret.digest("email-code/v1", &[user_id, code])
}

/// Six ASCII digits (spaces a person may type between them removed).
pub fn normalise(code: &str) -> Option<String> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    (digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// A pending code as stored, with `attempts` and `day_attempts` already counting the try
/// being judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub digest: String,
    pub expires_at: i64,
    pub attempts: i64,
    pub day_started: i64,
    pub day_attempts: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    Verified,
    Wrong {
        attempts_left: i64,
    },
    Expired,
    AttemptsExceeded,
    /// The day's tries are spent, whatever the code: wait this many seconds.
    TooManyToday {
        retry_after: i64,
    },
    /// No code was ever sent, or it was used.
    NonePending,
}

/// Judges one try: `matches` says whether the presented code's digest equals the stored one.
pub fn check(pending: Option<&Pending>, matches: bool, now: i64) -> Check {
    let Some(p) = pending else {
        return Check::NonePending;
    };
    if p.day_attempts > DAILY_ATTEMPTS {
        Check::TooManyToday {
            retry_after: (p.day_started + DAY_SECS - now).max(1),
        }
    } else if p.attempts > MAX_ATTEMPTS {
        Check::AttemptsExceeded
    } else if now >= p.expires_at {
        Check::Expired
    } else if matches {
        Check::Verified
    } else if p.attempts == MAX_ATTEMPTS {
        Check::AttemptsExceeded
    } else {
        Check::Wrong {
            attempts_left: MAX_ATTEMPTS - p.attempts,
        }
    }
}

/// Seconds to wait before another code may be sent, if any.
pub fn resend_wait(last_sent_at: Option<i64>, now: i64) -> Option<i64> {
    let next = last_sent_at? + RESEND_INTERVAL_SECS;
    (now < next).then_some(next - now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(attempts: i64) -> Pending {
        Pending {
            digest: "d".into(),
            expires_at: 1_600,
            attempts,
            day_started: 0,
            day_attempts: attempts,
        }
    }

    #[test]
    fn codes_are_six_digits() {
        let mut rng = rand::rng();
        for _ in 0..1_000 {
            let code = generate(&mut rng);
            assert_eq!(normalise(&code).as_deref(), Some(code.as_str()));
        }
        assert_eq!(normalise(" 012 345 ").as_deref(), Some("012345"));
        for bad in ["", "12345", "1234567", "12a456", "١٢٣٤٥٦"] {
            assert_eq!(normalise(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn digests_are_keyed_and_bound_to_the_person() {
        let a = ServerSecret::new([1; 32]);
        let b = ServerSecret::new([2; 32]);
        assert_eq!(digest(&a, "u1", "123456"), digest(&a, "u1", "123456"));
        assert_ne!(digest(&a, "u1", "123456"), digest(&b, "u1", "123456"));
        assert_ne!(digest(&a, "u1", "123456"), digest(&a, "u2", "123456"));
        assert_ne!(digest(&a, "u1", "123456"), digest(&a, "u1", "123457"));
    }

    #[test]
    fn a_right_code_in_time_verifies() {
        assert_eq!(check(Some(&pending(1)), true, 1_000), Check::Verified);
        assert_eq!(
            check(Some(&pending(MAX_ATTEMPTS)), true, 1_000),
            Check::Verified,
            "the fifth try may still be right"
        );
    }

    #[test]
    fn wrong_codes_count_down_then_lock() {
        for attempts in 1..MAX_ATTEMPTS {
            assert_eq!(
                check(Some(&pending(attempts)), false, 1_000),
                Check::Wrong {
                    attempts_left: MAX_ATTEMPTS - attempts
                }
            );
        }
        assert_eq!(
            check(Some(&pending(MAX_ATTEMPTS)), false, 1_000),
            Check::AttemptsExceeded
        );
        assert_eq!(
            check(Some(&pending(MAX_ATTEMPTS + 1)), true, 1_000),
            Check::AttemptsExceeded,
            "after five tries even the right code is refused"
        );
    }

    #[test]
    fn new_codes_do_not_renew_the_day_s_tries() {
        let fresh_code_late_in_the_day = Pending {
            attempts: 1,
            day_attempts: DAILY_ATTEMPTS + 1,
            ..pending(1)
        };
        assert_eq!(
            check(Some(&fresh_code_late_in_the_day), true, 1_000),
            Check::TooManyToday {
                retry_after: DAY_SECS - 1_000
            }
        );
        let last_try_of_the_day = Pending {
            day_attempts: DAILY_ATTEMPTS,
            ..pending(1)
        };
        assert_eq!(
            check(Some(&last_try_of_the_day), true, 1_000),
            Check::Verified
        );
    }

    #[test]
    fn expiry_and_absence() {
        assert_eq!(check(Some(&pending(1)), true, 1_599), Check::Verified);
        assert_eq!(check(Some(&pending(1)), true, 1_600), Check::Expired);
        assert_eq!(check(None, true, 0), Check::NonePending);
    }

    #[test]
    fn resend_waits_a_minute() {
        assert_eq!(resend_wait(None, 0), None);
        assert_eq!(resend_wait(Some(1_000), 1_000), Some(60));
        assert_eq!(resend_wait(Some(1_000), 1_059), Some(1));
        assert_eq!(resend_wait(Some(1_000), 1_060), None);
    }
}
