//! Brute-force limits: how many attempts a key (an account, an address, both) may make in
//! a window, decided and counted in one step *before* any password is hashed, so a
//! parallel burst cannot get more attempts than the budget.
//!
//! This module holds the rules: the budgets, the keys, and the wait a refusal announces.
//! The counts live in the database (`db::rate_limits`), so every instance counts each
//! attempt once.
//!
//! Why not a crate such as `governor`: those limit request *rates* (GCRA) in one process.
//! Here a success gives its attempt back, and the answer must carry `Retry-After`; a
//! counter per key in a fixed window says exactly that.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub limit: u32,
    pub window_secs: i64,
}

/// Password attempts per account and address: 10 in 15 minutes.
pub const ACCOUNT_AND_IP: Budget = Budget {
    limit: 10,
    window_secs: 15 * 60,
};
/// Password attempts per account from all addresses together: 50 in 15 minutes, so
/// rotating source addresses does not multiply an attacker's guesses.
pub const ACCOUNT: Budget = Budget {
    limit: 50,
    window_secs: 15 * 60,
};
/// Password attempts per address, whatever the account: 100 in 15 minutes.
pub const IP_LOGIN: Budget = Budget {
    limit: 100,
    window_secs: 15 * 60,
};
/// Sign-ins begun at identity providers per address: 60 in 15 minutes (each writes a flow
/// that lives ten minutes).
pub const IP_OIDC_START: Budget = Budget {
    limit: 60,
    window_secs: 15 * 60,
};
/// Second-factor codes tried per account, whatever the address and the `mfa_token`: 10 in
/// 15 minutes. A code has a million values and three are accepted at a time, so this keeps
/// the odds of a guess near 3 in 100,000 a quarter hour even for someone who holds the
/// password (each `mfa_token` also ends after 5 wrong codes).
pub const MFA_ACCOUNT: Budget = Budget {
    limit: 10,
    window_secs: 15 * 60,
};
/// Passkey sign-ins begun per address: 60 in 15 minutes (each writes a ceremony that lives
/// five minutes).
pub const IP_PASSKEY_START: Budget = Budget {
    limit: 60,
    window_secs: 15 * 60,
};
/// Passkey registrations begun per person: 20 in 15 minutes. Each start takes the person's
/// row in turn (it replaces their waiting registration); beyond the budget a start is
/// refused on a read, so a flood with one access token cannot keep database connections
/// waiting on that row.
pub const PERSON_PASSKEY_REGISTER: Budget = Budget {
    limit: 20,
    window_secs: 15 * 60,
};
/// Registrations tried per address: 20 an hour.
pub const IP_REGISTER: Budget = Budget {
    limit: 20,
    window_secs: 60 * 60,
};

/// The part of a client address that limits are keyed by: an IPv4 address, or an IPv6
/// address's /64 prefix (one subscriber gets a whole /64, so keying by the full address
/// would hand an attacker 2^64 fresh budgets). Anything unparsable is its own key.
pub fn address_key(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Ok(std::net::IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => ip.to_string(),
    }
}

/// A key and the budget it is counted against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limit {
    pub key: String,
    pub budget: Budget,
}

impl Limit {
    pub fn new(key: impl Into<String>, budget: Budget) -> Limit {
        Limit {
            key: key.into(),
            budget,
        }
    }
}

/// Seconds until the spent budget renews (`Retry-After`).
pub type RetryAfter = u64;

/// The wait a refusal announces: the longest of the spent limits', given the live
/// `windows` (`key`, `count`, `window_ends`) of their keys. At least a second.
pub fn retry_after(limits: &[Limit], windows: &[(String, i64, i64)], now: i64) -> RetryAfter {
    let longest = limits
        .iter()
        .filter_map(|limit| {
            let (_, count, ends) = windows.iter().find(|(key, _, _)| *key == limit.key)?;
            (*count >= i64::from(limit.budget.limit)).then_some(ends - now)
        })
        .max()
        .unwrap_or(1);
    longest.max(1) as RetryAfter
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Budget = Budget {
        limit: 3,
        window_secs: 100,
    };

    #[test]
    fn the_longest_wait_of_the_spent_limits_is_announced() {
        let limits = [Limit::new("a", B), Limit::new("b", B), Limit::new("c", B)];
        let windows = [
            ("a".to_string(), 3, 1090),
            ("b".to_string(), 2, 1500), // not spent: its wait does not count
            ("c".to_string(), 5, 1200),
        ];
        assert_eq!(retry_after(&limits, &windows, 1000), 200);
        // A window that ended as the answer was read still says a second.
        assert_eq!(retry_after(&limits[..1], &windows[..1], 1090), 1);
    }

    #[test]
    fn ipv6_addresses_share_their_64_prefix() {
        assert_eq!(address_key("203.0.113.7"), "203.0.113.7");
        assert_eq!(address_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            address_key("2001:db8:1:2:ffff:ffff:ffff:ffff"),
            address_key("2001:db8:1:2::9")
        );
        assert_ne!(
            address_key("2001:db8:1:3::1"),
            address_key("2001:db8:1:2::1")
        );
        assert_eq!(address_key("::ffff:198.51.100.1"), "198.51.100.1");
    }
}
