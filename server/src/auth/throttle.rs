//! Brute-force throttling of login and register: failures counted per key in fixed
//! windows, in process memory (shared state comes with the scale-out work).
//!
//! Why not a crate such as `governor`: those limit request *rates* (GCRA). Here the unit
//! is a *failure* (a wrong password), a success resets the account's count, and the
//! answer must carry `Retry-After`; a counter per key in a window says exactly that.

use std::{collections::HashMap, sync::Mutex};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub limit: u32,
    pub window_secs: i64,
}

/// Wrong passwords per account and address: 10 in 15 minutes.
pub const ACCOUNT_AND_IP: Budget = Budget {
    limit: 10,
    window_secs: 15 * 60,
};
/// Wrong passwords per address, whatever the account: 100 in 15 minutes.
pub const IP_LOGIN: Budget = Budget {
    limit: 100,
    window_secs: 15 * 60,
};
/// Registrations tried per address: 20 an hour.
pub const IP_REGISTER: Budget = Budget {
    limit: 20,
    window_secs: 60 * 60,
};

#[derive(Clone, Copy, Debug)]
struct Window {
    started: i64,
    count: u32,
    window_secs: i64,
}

/// Past this many keys, ended windows are swept out on the next write.
const SWEEP_AT: usize = 10_000;

pub struct Throttle {
    enabled: bool,
    windows: Mutex<HashMap<String, Window>>,
}

impl Throttle {
    pub fn new(enabled: bool) -> Throttle {
        Throttle {
            enabled,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(retry_after_secs)` when any key has spent its budget.
    pub fn check(&self, keys: &[(&str, Budget)], now: i64) -> Result<(), u64> {
        if !self.enabled {
            return Ok(());
        }
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        Self::refusal(&windows, keys, now)
    }

    /// For budgets of attempts (not failures): refuses, or counts the attempt, under one
    /// lock, so a burst of parallel requests cannot all pass a nearly spent budget.
    pub fn check_and_hit(&self, keys: &[(&str, Budget)], now: i64) -> Result<(), u64> {
        if !self.enabled {
            return Ok(());
        }
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        Self::refusal(&windows, keys, now)?;
        Self::count(&mut windows, keys, now);
        Ok(())
    }

    fn refusal(
        windows: &HashMap<String, Window>,
        keys: &[(&str, Budget)],
        now: i64,
    ) -> Result<(), u64> {
        let retry_after = keys
            .iter()
            .filter_map(|(key, budget)| {
                let w = windows.get(*key)?;
                let ends = w.started + w.window_secs;
                (now < ends && w.count >= budget.limit).then_some(ends - now)
            })
            .max();
        match retry_after {
            Some(secs) => Err(secs.max(1) as u64),
            None => Ok(()),
        }
    }

    /// Counts one failure (or attempt) against every key.
    pub fn hit(&self, keys: &[(&str, Budget)], now: i64) {
        if !self.enabled {
            return;
        }
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        Self::count(&mut windows, keys, now);
    }

    fn count(windows: &mut HashMap<String, Window>, keys: &[(&str, Budget)], now: i64) {
        if windows.len() >= SWEEP_AT {
            windows.retain(|_, w| now < w.started + w.window_secs);
        }
        for (key, budget) in keys {
            let w = windows.entry((*key).to_string()).or_insert(Window {
                started: now,
                count: 0,
                window_secs: budget.window_secs,
            });
            if now >= w.started + w.window_secs {
                *w = Window {
                    started: now,
                    count: 0,
                    window_secs: budget.window_secs,
                };
            }
            w.count += 1;
        }
    }

    /// Forgets a key's failures (after a successful login).
    pub fn clear(&self, key: &str) {
        self.windows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Budget = Budget {
        limit: 3,
        window_secs: 100,
    };

    #[test]
    fn the_budget_is_spent_then_renewed_after_the_window() {
        let t = Throttle::new(true);
        for i in 0..3 {
            assert_eq!(t.check(&[("k", B)], 1000 + i), Ok(()));
            t.hit(&[("k", B)], 1000 + i);
        }
        assert_eq!(t.check(&[("k", B)], 1010), Err(90));
        assert_eq!(t.check(&[("other", B)], 1010), Ok(()));
        assert_eq!(t.check(&[("k", B)], 1100), Ok(()));
    }

    #[test]
    fn check_and_hit_counts_only_what_it_lets_through() {
        let t = Throttle::new(true);
        for i in 0..3 {
            assert_eq!(t.check_and_hit(&[("k", B)], 1000 + i), Ok(()));
        }
        assert_eq!(t.check_and_hit(&[("k", B)], 1010), Err(90));
        assert_eq!(t.check_and_hit(&[("k", B)], 1100), Ok(()));
        assert_eq!(
            Throttle::new(false).check_and_hit(&[("k", B)], 0),
            Ok(()),
            "disabled"
        );
    }

    #[test]
    fn clearing_resets_a_key_and_disabled_never_refuses() {
        let t = Throttle::new(true);
        for _ in 0..3 {
            t.hit(&[("k", B)], 0);
        }
        t.clear("k");
        assert_eq!(t.check(&[("k", B)], 1), Ok(()));
        let off = Throttle::new(false);
        for _ in 0..10 {
            off.hit(&[("k", B)], 0);
        }
        assert_eq!(off.check(&[("k", B)], 1), Ok(()));
    }

    #[test]
    fn the_longest_wait_of_all_spent_keys_is_reported() {
        let t = Throttle::new(true);
        let long = Budget {
            limit: 1,
            window_secs: 500,
        };
        t.hit(&[("a", B), ("b", long)], 0);
        t.hit(&[("a", B)], 0);
        t.hit(&[("a", B)], 0);
        assert_eq!(t.check(&[("a", B), ("b", long)], 10), Err(490));
    }
}
