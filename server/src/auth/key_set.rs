//! Which signing key is in which state, from the keys' times alone (no database, no
//! clock of its own), so every instance reading the same keys decides the same.
//!
//! Keys are ordered by when they start signing (`signs_from`, then `kid`). A key signs
//! from its `signs_from` until the next key's; it is published from its creation, so
//! resource servers learn it before its first token, and until every token it signed has
//! expired: the next key's `signs_from` plus the tokens' lifetime and leeway.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    /// Published; signs from its `signs_from`.
    Next,
    /// Signs new tokens.
    Current,
    /// Replaced; published while tokens it signed may still be live.
    Retiring,
    /// Its tokens have all expired: no longer published, and its tokens no longer verify.
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Current => "current",
            KeyState::Retiring => "retiring",
            KeyState::Retired => "retired",
        }
    }

    /// In the published keys (JWKS), and accepted on tokens.
    pub fn is_published(self) -> bool {
        self != KeyState::Retired
    }
}

/// The state at `now` of a key that signs from `signs_from` and whose successor (the next
/// key in order) signs from `replaced_at`, when there is one. `token_life` is how long a
/// token may be accepted after it was signed (lifetime and leeway).
pub fn state(signs_from: i64, replaced_at: Option<i64>, now: i64, token_life: i64) -> KeyState {
    match replaced_at {
        _ if now < signs_from => KeyState::Next,
        Some(replaced) if now >= replaced => {
            if now < replaced.saturating_add(token_life) {
                KeyState::Retiring
            } else {
                KeyState::Retired
            }
        }
        _ => KeyState::Current,
    }
}

/// The states of keys given as `(kid, signs_from)` in any order, in that order.
pub fn states(keys: &[(String, i64)], now: i64, token_life: i64) -> Vec<KeyState> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| (keys[a].1, &keys[a].0).cmp(&(keys[b].1, &keys[b].0)));
    let mut out = vec![KeyState::Retired; keys.len()];
    for (at, &i) in order.iter().enumerate() {
        let replaced_at = order.get(at + 1).map(|&next| keys[next].1);
        out[i] = state(keys[i].1, replaced_at, now, token_life);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use KeyState::*;

    const LIFE: i64 = 905;

    fn keys(times: &[(&str, i64)]) -> Vec<(String, i64)> {
        times.iter().map(|(k, t)| (k.to_string(), *t)).collect()
    }

    #[test]
    fn a_single_key_signs_for_ever() {
        assert_eq!(states(&keys(&[("a", 0)]), 1_000_000, LIFE), [Current]);
    }

    #[test]
    fn a_rotation_publishes_first_then_signs_then_retires_the_old_key() {
        // Rotated at 1000 with a 600 s publish delay.
        let k = keys(&[("new", 1600), ("old", 0)]);
        assert_eq!(states(&k, 1000, LIFE), [Next, Current]);
        assert_eq!(states(&k, 1599, LIFE), [Next, Current]);
        assert_eq!(states(&k, 1600, LIFE), [Current, Retiring]);
        assert_eq!(states(&k, 1600 + LIFE - 1, LIFE), [Current, Retiring]);
        assert_eq!(states(&k, 1600 + LIFE, LIFE), [Current, Retired]);
    }

    #[test]
    fn a_key_replaced_before_it_signed_retires_with_its_predecessor() {
        // Two rotations 10 s apart: "b" signs 10 s only, then hands over to "c".
        let k = keys(&[("a", 0), ("b", 600), ("c", 610)]);
        assert_eq!(states(&k, 605, LIFE), [Retiring, Current, Next]);
        assert_eq!(states(&k, 700, LIFE), [Retiring, Retiring, Current]);
        assert_eq!(states(&k, 610 + LIFE, LIFE), [Retired, Retired, Current]);
    }

    #[test]
    fn keys_starting_at_the_same_second_are_ordered_by_kid() {
        // Two instances importing their key files into an empty table at once: every
        // instance signs with the same one of them.
        let k = keys(&[("y", 0), ("x", 0)]);
        assert_eq!(states(&k, 10, LIFE), [Current, Retiring]);
    }
}
