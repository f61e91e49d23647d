//! Brute-force limits: how many attempts a key (an account, an address, both) may make in
//! a window, decided and counted in one step *before* any password is hashed, so a
//! parallel burst cannot get more attempts than the budget.
//!
//! [`Limiter`] is the interface; [`MemoryLimiter`] keeps the counts in this process (one
//! instance), bounded in memory. A store shared by several instances implements the same
//! trait.
//!
//! Why not a crate such as `governor`: those limit request *rates* (GCRA). Here a success
//! gives its attempt back, and the answer must carry `Retry-After`; a counter per key in
//! a fixed window says exactly that.

use std::{future::Future, pin::Pin, sync::Mutex};

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

pub type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub trait Limiter: Send + Sync {
    /// Counts one attempt against every limit, or, when any of them is spent, refuses
    /// with the longest wait and counts nothing. Decided atomically.
    fn attempt<'a>(&'a self, limits: &'a [Limit], now: i64) -> Pending<'a, Result<(), RetryAfter>>;

    /// Gives one attempt back to every limit (it succeeded: it was not a guess).
    fn give_back<'a>(&'a self, limits: &'a [Limit], now: i64) -> Pending<'a, ()>;

    /// Forgets a key's count (a person got in from this address: their earlier typos
    /// there are forgiven).
    fn reset<'a>(&'a self, key: &'a str) -> Pending<'a, ()>;
}

/// No limits at all (`RATE_LIMIT_ENABLED=false`: load tests and test suites).
pub struct Unlimited;

impl Limiter for Unlimited {
    fn attempt<'a>(&'a self, _: &'a [Limit], _: i64) -> Pending<'a, Result<(), RetryAfter>> {
        Box::pin(async { Ok(()) })
    }

    fn give_back<'a>(&'a self, _: &'a [Limit], _: i64) -> Pending<'a, ()> {
        Box::pin(async {})
    }

    fn reset<'a>(&'a self, _: &'a str) -> Pending<'a, ()> {
        Box::pin(async {})
    }
}

#[derive(Clone, Copy, Debug)]
struct Window {
    started: i64,
    count: u32,
    window_secs: i64,
}

impl Window {
    fn ends(&self) -> i64 {
        self.started + self.window_secs
    }
}

/// Keys kept at most. Past it the cache evicts the least useful entries itself (CLOCK-Pro,
/// constant time per insert), so a flood of new keys never makes a request scan the table
/// under the lock. An evicted key starts afresh: the cap must stay well above the number
/// of keys a window sees in normal use.
const MAX_KEYS: usize = 100_000;

/// The counts in this process's memory, behind one lock: a decision over several keys
/// must see and change them together.
pub struct MemoryLimiter {
    windows: Mutex<quick_cache::unsync::Cache<String, Window>>,
}

impl Default for MemoryLimiter {
    fn default() -> Self {
        MemoryLimiter::with_capacity(MAX_KEYS)
    }
}

impl MemoryLimiter {
    pub fn with_capacity(keys: usize) -> MemoryLimiter {
        MemoryLimiter {
            windows: Mutex::new(quick_cache::unsync::Cache::new(keys)),
        }
    }

    fn decide(&self, limits: &[Limit], now: i64) -> Result<(), RetryAfter> {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let retry_after = limits
            .iter()
            .filter_map(|limit| {
                let w = windows.peek(limit.key.as_str())?;
                (now < w.ends() && w.count >= limit.budget.limit).then_some(w.ends() - now)
            })
            .max();
        if let Some(secs) = retry_after {
            return Err(secs.max(1) as u64);
        }
        for limit in limits {
            let current = windows
                .get(limit.key.as_str())
                .copied()
                .filter(|w| now < w.ends());
            let mut w = current.unwrap_or(Window {
                started: now,
                count: 0,
                window_secs: limit.budget.window_secs,
            });
            w.count += 1;
            windows.insert(limit.key.clone(), w);
        }
        Ok(())
    }

    fn undo(&self, limits: &[Limit], now: i64) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        for limit in limits {
            if let Some(mut w) = windows.get_mut(limit.key.as_str()) {
                if now < w.ends() {
                    w.count = w.count.saturating_sub(1);
                }
            }
        }
    }

    #[cfg(test)]
    fn keys(&self) -> usize {
        self.windows.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Limiter for MemoryLimiter {
    fn attempt<'a>(&'a self, limits: &'a [Limit], now: i64) -> Pending<'a, Result<(), RetryAfter>> {
        let decided = self.decide(limits, now);
        Box::pin(async move { decided })
    }

    fn give_back<'a>(&'a self, limits: &'a [Limit], now: i64) -> Pending<'a, ()> {
        self.undo(limits, now);
        Box::pin(async {})
    }

    fn reset<'a>(&'a self, key: &'a str) -> Pending<'a, ()> {
        self.windows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Budget = Budget {
        limit: 3,
        window_secs: 100,
    };

    fn k(key: &str) -> Vec<Limit> {
        vec![Limit::new(key, B)]
    }

    fn attempt(l: &MemoryLimiter, limits: &[Limit], now: i64) -> Result<(), RetryAfter> {
        l.decide(limits, now)
    }

    #[test]
    fn the_budget_is_spent_then_renewed_after_the_window() {
        let l = MemoryLimiter::default();
        for i in 0..3 {
            assert_eq!(attempt(&l, &k("k"), 1000 + i), Ok(()));
        }
        assert_eq!(attempt(&l, &k("k"), 1010), Err(90));
        assert_eq!(attempt(&l, &k("other"), 1010), Ok(()));
        assert_eq!(attempt(&l, &k("k"), 1100), Ok(()));
    }

    #[test]
    fn a_refusal_counts_nothing_on_any_key() {
        let l = MemoryLimiter::default();
        let spent = Budget {
            limit: 1,
            window_secs: 100,
        };
        let both = vec![Limit::new("a", B), Limit::new("b", spent)];
        assert_eq!(attempt(&l, &both, 0), Ok(()));
        for _ in 0..5 {
            assert!(attempt(&l, &both, 1).is_err());
        }
        // "a" was counted once, by the attempt that passed.
        assert_eq!(attempt(&l, &k("a"), 2), Ok(()));
        assert_eq!(attempt(&l, &k("a"), 2), Ok(()));
        assert!(attempt(&l, &k("a"), 2).is_err());
    }

    #[test]
    fn giving_back_makes_room_for_one_more() {
        let l = MemoryLimiter::default();
        for _ in 0..3 {
            attempt(&l, &k("k"), 0).unwrap();
        }
        assert!(attempt(&l, &k("k"), 1).is_err());
        l.undo(&k("k"), 1);
        assert_eq!(attempt(&l, &k("k"), 1), Ok(()));
        assert!(attempt(&l, &k("k"), 1).is_err());
    }

    #[test]
    fn the_longest_wait_of_all_spent_keys_is_reported() {
        let l = MemoryLimiter::default();
        let long = Budget {
            limit: 1,
            window_secs: 500,
        };
        attempt(&l, &[Limit::new("a", B), Limit::new("b", long)], 0).unwrap();
        attempt(&l, &k("a"), 0).unwrap();
        attempt(&l, &k("a"), 0).unwrap();
        assert_eq!(
            attempt(&l, &[Limit::new("a", B), Limit::new("b", long)], 10),
            Err(490)
        );
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_keys() {
        let l = MemoryLimiter::with_capacity(1_000);
        for i in 0..20_000 {
            attempt(&l, &k(&format!("flood-{i}")), 0).unwrap();
        }
        assert!(l.keys() <= 1_000, "{} keys kept", l.keys());
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

    #[test]
    fn a_flood_of_new_keys_from_one_address_cannot_reset_a_spent_budget() {
        // Every attempt names the address too, and a refused attempt creates no key: one
        // address makes at most its own budget of keys, far below the cap.
        let l = MemoryLimiter::with_capacity(1_000);
        let account = Limit::new("account:victim", B);
        for _ in 0..3 {
            l.decide(std::slice::from_ref(&account), 0).unwrap();
        }
        let per_address = Budget {
            limit: 100,
            window_secs: 100,
        };
        for i in 0..20_000 {
            let _ = l.decide(
                &[
                    Limit::new("ip:attacker", per_address),
                    Limit::new(format!("account:{i}"), B),
                ],
                1,
            );
        }
        assert!(l.decide(&[account], 2).is_err(), "still spent");
    }

    #[tokio::test]
    async fn unlimited_never_refuses() {
        let limits = k("k");
        for _ in 0..10 {
            assert_eq!(Unlimited.attempt(&limits, 0).await, Ok(()));
        }
    }
}
