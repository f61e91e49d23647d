//! The rotation rules of refresh tokens, as one pure function: no axum, no SQL, no clock
//! of its own. The store (`db::sessions`) reads the presented token and its family, asks
//! [`decide`], and carries the decision out in the same transaction.
//!
//! A login starts a *family* (a session). Each refresh consumes the family's newest token
//! and issues its child, one generation further. Presenting a token that was already
//! consumed is either
//! - the bounded race of two tabs (or a lost response): the token is the immediate parent
//!   of the family's newest token and was consumed at most `grace` seconds ago. The answer
//!   converges on that same newest token, so the family never forks; or
//! - anything else (an older ancestor, or after the grace window): a replay, treated as
//!   theft. The whole family is revoked.

/// What the store knows of the presented token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    pub generation: i64,
    /// End of the token's idle lifetime (Unix seconds).
    pub expires_at: i64,
    /// When it was consumed by a rotation, if it was.
    pub used_at: Option<i64>,
}

/// What the store knows of the token's family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FamilyRecord {
    /// Generation of the newest token, the only one that may still rotate.
    pub newest_generation: i64,
    /// End of the family's absolute lifetime (Unix seconds).
    pub expires_at: i64,
    pub revoked: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Idle lifetime of each token, seconds.
    pub refresh_ttl: i64,
    /// Convergence window, seconds.
    pub grace: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Consume the presented token and issue generation `child`, valid until `expires_at`.
    Rotate { child: i64, expires_at: i64 },
    /// The bounded race: answer with the existing newest token, generation `newest`.
    Converge { newest: i64 },
    /// A replay outside the bounded race: revoke the whole family.
    Reuse(ReuseCause),
    /// Unknown token, or its family was revoked or logged out.
    Invalid,
    /// Past its idle lifetime, or its family past its absolute lifetime.
    Expired,
}

/// Why a replay was not the bounded race (for the audit log).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReuseCause {
    /// Consumed more than `grace` seconds ago.
    AfterGrace,
    /// Not the immediate parent of the newest token (a grandparent or older).
    NotParentOfNewest,
}

impl ReuseCause {
    pub fn as_str(self) -> &'static str {
        match self {
            ReuseCause::AfterGrace => "replayed after the grace window",
            ReuseCause::NotParentOfNewest => {
                "replayed an ancestor older than the parent of the newest token"
            }
        }
    }
}

/// Decides what presenting a refresh token at `now` means.
pub fn decide(
    presented: Option<(TokenRecord, FamilyRecord)>,
    now: i64,
    policy: Policy,
) -> Decision {
    let Some((token, family)) = presented else {
        return Decision::Invalid;
    };
    if family.revoked {
        return Decision::Invalid;
    }
    if now >= family.expires_at {
        return Decision::Expired;
    }
    match token.used_at {
        None => {
            if now >= token.expires_at {
                Decision::Expired
            } else if token.generation != family.newest_generation {
                // An unconsumed token that is not the newest cannot exist; refuse it as
                // theft rather than trust a corrupted store.
                Decision::Reuse(ReuseCause::NotParentOfNewest)
            } else {
                Decision::Rotate {
                    child: token.generation + 1,
                    expires_at: (now + policy.refresh_ttl).min(family.expires_at),
                }
            }
        }
        Some(used_at) => {
            if token.generation + 1 != family.newest_generation {
                Decision::Reuse(ReuseCause::NotParentOfNewest)
            } else if now - used_at > policy.grace {
                // A clock behind the one that consumed the token (now < used_at) counts
                // as inside the window: the race is bounded by grace plus clock skew.
                Decision::Reuse(ReuseCause::AfterGrace)
            } else {
                Decision::Converge {
                    newest: family.newest_generation,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        refresh_ttl: 1000,
        grace: 10,
    };
    const T0: i64 = 1_700_000_000;

    /// A small in-memory family driven only through `decide`, with an explicit clock.
    struct Family {
        tokens: Vec<TokenRecord>,
        expires_at: i64,
        revoked: bool,
    }

    impl Family {
        fn login(now: i64, max_age: i64) -> Family {
            Family {
                tokens: vec![TokenRecord {
                    generation: 0,
                    expires_at: now + POLICY.refresh_ttl,
                    used_at: None,
                }],
                expires_at: now + max_age,
                revoked: false,
            }
        }

        fn record(&self) -> FamilyRecord {
            FamilyRecord {
                newest_generation: self.tokens.len() as i64 - 1,
                expires_at: self.expires_at,
                revoked: self.revoked,
            }
        }

        /// Presents generation `g` at `now` and applies the decision as the store would.
        fn present(&mut self, g: i64, now: i64) -> Decision {
            let token = self.tokens.get(g as usize).copied();
            let decision = decide(token.map(|t| (t, self.record())), now, POLICY);
            match decision {
                Decision::Rotate { child, expires_at } => {
                    self.tokens[g as usize].used_at = Some(now);
                    assert_eq!(child, self.tokens.len() as i64);
                    self.tokens.push(TokenRecord {
                        generation: child,
                        expires_at,
                        used_at: None,
                    });
                }
                Decision::Reuse(_) => self.revoked = true,
                Decision::Converge { .. } | Decision::Invalid | Decision::Expired => {}
            }
            decision
        }

        fn live_tokens(&self) -> usize {
            self.tokens.iter().filter(|t| t.used_at.is_none()).count()
        }
    }

    fn family() -> Family {
        Family::login(T0, 100_000)
    }

    #[test]
    fn first_refresh_rotates_to_generation_one() {
        let mut f = family();
        assert_eq!(
            f.present(0, T0 + 5),
            Decision::Rotate {
                child: 1,
                expires_at: T0 + 5 + POLICY.refresh_ttl
            }
        );
        assert_eq!(f.live_tokens(), 1);
    }

    #[test]
    fn a_chain_of_refreshes_keeps_exactly_one_live_token() {
        let mut f = family();
        for g in 0..20 {
            let now = T0 + 100 * (g + 1);
            assert!(matches!(f.present(g, now), Decision::Rotate { child, .. } if child == g + 1));
            assert_eq!(f.live_tokens(), 1);
        }
        assert_eq!(f.record().newest_generation, 20);
    }

    #[test]
    fn the_parent_replayed_inside_grace_converges_on_the_newest() {
        let mut f = family();
        f.present(0, T0 + 1);
        for dt in [0, 1, POLICY.grace] {
            assert_eq!(
                f.present(0, T0 + 1 + dt),
                Decision::Converge { newest: 1 },
                "dt={dt}"
            );
        }
        assert!(!f.revoked);
        assert_eq!(f.live_tokens(), 1);
        // The newest token still rotates normally afterwards.
        assert!(matches!(
            f.present(1, T0 + 20),
            Decision::Rotate { child: 2, .. }
        ));
    }

    #[test]
    fn the_parent_replayed_after_grace_revokes_the_family() {
        let mut f = family();
        f.present(0, T0 + 1);
        assert_eq!(
            f.present(0, T0 + 1 + POLICY.grace + 1),
            Decision::Reuse(ReuseCause::AfterGrace)
        );
        assert!(f.revoked);
        // Every token of the family is dead, the newest included.
        assert_eq!(f.present(1, T0 + 13), Decision::Invalid);
        assert_eq!(f.present(0, T0 + 14), Decision::Invalid);
    }

    #[test]
    fn a_grandparent_replayed_inside_grace_is_theft() {
        let mut f = family();
        f.present(0, T0 + 1);
        f.present(1, T0 + 2);
        assert_eq!(
            f.present(0, T0 + 3),
            Decision::Reuse(ReuseCause::NotParentOfNewest)
        );
        assert!(f.revoked);
        assert_eq!(f.present(2, T0 + 4), Decision::Invalid);
    }

    #[test]
    fn the_parent_after_its_child_rotated_is_theft_even_inside_grace() {
        // Converging is only ever onto a token that is still unused.
        let mut f = family();
        f.present(0, T0 + 1);
        f.present(1, T0 + 2);
        assert_eq!(f.present(1, T0 + 3), Decision::Converge { newest: 2 });
        assert_eq!(
            f.present(0, T0 + 3),
            Decision::Reuse(ReuseCause::NotParentOfNewest)
        );
    }

    #[test]
    fn idle_expiry_ends_a_token() {
        let mut f = family();
        assert_eq!(f.present(0, T0 + POLICY.refresh_ttl), Decision::Expired);
        assert_eq!(
            f.present(0, T0 + POLICY.refresh_ttl - 1),
            Decision::Rotate {
                child: 1,
                expires_at: T0 + 2 * POLICY.refresh_ttl - 1
            }
        );
    }

    #[test]
    fn absolute_expiry_ends_the_family_whatever_its_refreshes() {
        let mut f = Family::login(T0, 2500);
        assert!(matches!(f.present(0, T0 + 900), Decision::Rotate { .. }));
        assert!(
            matches!(f.present(1, T0 + 1800), Decision::Rotate { expires_at, .. } if expires_at == T0 + 2500)
        );
        assert_eq!(f.present(2, T0 + 2500), Decision::Expired);
        // A replay of a consumed token after the end is expired too, not theft.
        assert_eq!(f.present(1, T0 + 2501), Decision::Expired);
        assert!(!f.revoked);
    }

    #[test]
    fn a_revoked_family_refuses_every_token() {
        let mut f = family();
        f.present(0, T0 + 1);
        f.revoked = true;
        assert_eq!(f.present(1, T0 + 2), Decision::Invalid);
        assert_eq!(f.present(0, T0 + 2), Decision::Invalid);
    }

    #[test]
    fn an_unknown_token_is_invalid() {
        assert_eq!(decide(None, T0, POLICY), Decision::Invalid);
        let mut f = family();
        assert_eq!(f.present(7, T0), Decision::Invalid);
    }

    #[test]
    fn a_clock_behind_the_rotation_still_counts_as_inside_grace() {
        let mut f = family();
        f.present(0, T0 + 100);
        assert_eq!(f.present(0, T0 + 70), Decision::Converge { newest: 1 });
    }

    #[test]
    fn an_unconsumed_token_that_is_not_the_newest_is_refused() {
        let token = TokenRecord {
            generation: 0,
            expires_at: T0 + 100,
            used_at: None,
        };
        let family = FamilyRecord {
            newest_generation: 1,
            expires_at: T0 + 1000,
            revoked: false,
        };
        assert_eq!(
            decide(Some((token, family)), T0, POLICY),
            Decision::Reuse(ReuseCause::NotParentOfNewest)
        );
    }
}
