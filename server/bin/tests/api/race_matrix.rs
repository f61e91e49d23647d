//! The race matrix: the rotation rules plus the real store, driven deterministically. No
//! sleeping: every request carries its own time (an explicit clock, with ±30 s of skew
//! between server instances); the interleaving comes from a seeded RNG, so a failure names
//! the seed that reproduces it.
//!
//! For each seed, one login's refresh chain is driven through tabs racing on one cookie
//! jar, responses delivered or lost, retries inside or after the grace window, a thief
//! replaying old tokens, and transactions that fail and roll back. After every step the
//! store must agree with the pure rules (`auth::refresh::decide` on an in-memory model),
//! and these invariants must hold:
//! - a family never has two live tokens;
//! - a replay that is not the bounded race revokes the family and all its descendants;
//! - an honest client that lost one response inside the grace window recovers;
//! - nothing is half-written after a rollback.

use crate::helpers::{spawn_app, unique_email, TestApp};
use rand::{rngs::StdRng, Rng, SeedableRng};
use server::{
    auth::{
        refresh::{decide, Decision, FamilyRecord, Policy, ReuseCause, TokenRecord},
        tokens,
    },
    db::sessions,
    service::{
        sessions::{self as session, Issued, Lifetimes, RefreshFailure},
        Client as ClientInfo,
    },
};

const GRACE: i64 = 10;
const POLICY: Policy = Policy {
    refresh_ttl: 1_000_000,
    grace: GRACE,
};
const SKEWS: [i64; 3] = [-30, 0, 30];

/// The pure rules applied to an in-memory copy of one family: the reference.
struct Model {
    tokens: Vec<(String, TokenRecord)>,
    expires_at: i64,
    revoked: bool,
}

impl Model {
    fn record(&self) -> FamilyRecord {
        FamilyRecord {
            newest_generation: self.tokens.len() as i64 - 1,
            expires_at: self.expires_at,
            revoked: self.revoked,
        }
    }

    fn decide(&self, token: &str, now: i64) -> Decision {
        let found = self
            .tokens
            .iter()
            .find(|(t, _)| t == token)
            .map(|(_, r)| (*r, self.record()));
        decide(found, now, POLICY)
    }

    /// Applies a decision as the store must, given the token the store issued.
    fn apply(&mut self, token: &str, now: i64, decision: Decision, issued: Option<&str>) {
        match decision {
            Decision::Rotate { child, expires_at } => {
                let i = self.tokens.iter().position(|(t, _)| t == token).unwrap();
                self.tokens[i].1.used_at = Some(now);
                assert_eq!(child as usize, self.tokens.len());
                self.tokens.push((
                    issued.unwrap().to_string(),
                    TokenRecord {
                        generation: child,
                        expires_at,
                        used_at: None,
                    },
                ));
            }
            Decision::Reuse(_) => self.revoked = true,
            Decision::Converge { .. } | Decision::Invalid | Decision::Expired => {}
        }
    }

    fn newest(&self) -> &str {
        &self.tokens.last().unwrap().0
    }
}

/// How often each outcome was seen over all seeds: the matrix must reach every cell.
#[derive(Default, Debug)]
struct Tally {
    rotate: u32,
    converge: u32,
    reuse_after_grace: u32,
    reuse_ancestor: u32,
    invalid: u32,
    rollbacks: u32,
    recoveries: u32,
}

struct Run<'a> {
    /// The instances the requests go to, in turn: one, or two sharing the database.
    apps: &'a [&'a TestApp],
    tally: &'a mut Tally,
    model: Model,
    family_id: String,
    seed: u64,
    step: usize,
}

impl<'a> Run<'a> {
    /// The instance that takes the current step's request.
    fn app(&self) -> &'a TestApp {
        self.apps[self.step % self.apps.len()]
    }

    /// One refresh at server time `now`: the store's answer, checked against the model.
    async fn present(&mut self, token: &str, now: i64) -> Result<Issued, RefreshFailure> {
        self.step += 1;
        let expected = self.model.decide(token, now);
        let got = session::rotate(
            &self.app().db,
            &self.app().state.core.secret,
            token,
            now,
            POLICY,
        )
        .await
        .unwrap();
        let ctx = format!(
            "seed {} step {}: {expected:?} got {got:?}",
            self.seed, self.step
        );
        match (expected, &got) {
            (Decision::Rotate { child, expires_at }, Ok(issued)) => {
                assert_eq!(issued.expires_at, expires_at, "{ctx}");
                let derived = tokens::child_token(
                    &self.app().state.core.secret,
                    &self.family_id,
                    child,
                    token,
                );
                assert_eq!(issued.refresh_token, derived, "{ctx}");
            }
            (Decision::Converge { newest }, Ok(issued)) => {
                assert_eq!(
                    issued.refresh_token, self.model.tokens[newest as usize].0,
                    "{ctx}"
                );
            }
            (Decision::Reuse(cause), Err(RefreshFailure::Reused(got_cause))) => {
                assert_eq!(cause, *got_cause, "{ctx}")
            }
            (Decision::Invalid, Err(RefreshFailure::Invalid))
            | (Decision::Expired, Err(RefreshFailure::Expired)) => {}
            _ => panic!("the store disagrees with the rules: {ctx}"),
        }
        match expected {
            Decision::Rotate { .. } => self.tally.rotate += 1,
            Decision::Converge { .. } => self.tally.converge += 1,
            Decision::Reuse(ReuseCause::AfterGrace) => self.tally.reuse_after_grace += 1,
            Decision::Reuse(ReuseCause::NotParentOfNewest) => self.tally.reuse_ancestor += 1,
            Decision::Invalid => self.tally.invalid += 1,
            Decision::Expired => {}
        }
        self.model.apply(
            token,
            now,
            expected,
            got.as_ref().ok().map(|i| i.refresh_token.as_str()),
        );
        self.check_invariants(&ctx).await;
        got
    }

    async fn check_invariants(&self, ctx: &str) {
        let pool = self.app().db.pool();
        let live: i64 = sqlx::query_scalar(
            "select count(*) from refresh_tokens where family_id = $1 and used_at is null",
        )
        .bind(&self.family_id)
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(live, 1, "one unused token per family, never two: {ctx}");
        let (generation, revoked): (i64, Option<i64>) =
            sqlx::query_as("select generation, revoked_at from refresh_families where id = $1")
                .bind(&self.family_id)
                .fetch_one(pool)
                .await
                .unwrap();
        assert_eq!(generation, self.model.record().newest_generation, "{ctx}");
        assert_eq!(revoked.is_some(), self.model.revoked, "{ctx}");
        let total: i64 =
            sqlx::query_scalar("select count(*) from refresh_tokens where family_id = $1")
                .bind(&self.family_id)
                .fetch_one(pool)
                .await
                .unwrap();
        assert_eq!(
            total as usize,
            self.model.tokens.len(),
            "no fork, no lost write: {ctx}"
        );
    }

    /// A transaction that does the rotation's writes, then fails before commit.
    async fn failed_rotation(&mut self, token: &str, now: i64) {
        let snapshot = self.snapshot().await;
        let mut tx = self.app().db.begin_write().await.unwrap();
        let found = sessions::find_presented(&mut *tx, &tokens::hash(token))
            .await
            .unwrap();
        if let Some(found) = found {
            let generation = self.model.record().newest_generation + 1;
            let child = tokens::child_token(
                &self.app().state.core.secret,
                &self.family_id,
                generation,
                token,
            );
            sessions::rotate(
                &mut tx,
                sessions::Rotation {
                    family_id: &self.family_id,
                    parent_generation: found.token.generation,
                    parent_hash: &tokens::hash(token),
                    child_hash: &tokens::hash(&child),
                    child_expires_at: now + 100,
                    now,
                },
            )
            .await
            .unwrap();
        }
        tx.rollback().await.unwrap();
        self.tally.rollbacks += 1;
        assert_eq!(
            self.snapshot().await,
            snapshot,
            "seed {}: nothing half-written",
            self.seed
        );
    }

    async fn snapshot(&self) -> Vec<(String, i64, Option<i64>)> {
        sqlx::query_as(
            "select token_hash, generation, used_at from refresh_tokens where family_id = $1 order by generation",
        )
        .bind(&self.family_id)
        .fetch_all(self.app().db.pool())
        .await
        .unwrap()
    }
}

async fn run_seed(apps: &[&TestApp], tally: &mut Tally, user_id: &str, seed: u64) {
    let app = apps[0];
    let mut rng = StdRng::seed_from_u64(seed);
    let t0 = 1_900_000_000 + (seed as i64) * 10_000;
    let first = tokens::random_token(&mut rng);
    let lifetimes = Lifetimes {
        policy: POLICY,
        session_max: 10_000_000,
    };
    let issued = session::start(
        &app.db,
        user_id,
        t0,
        lifetimes,
        ClientInfo {
            user_agent: None,
            ip: None,
        },
        first.clone(),
    )
    .await
    .unwrap();
    let mut run = Run {
        apps,
        tally,
        model: Model {
            tokens: vec![(
                first.clone(),
                TokenRecord {
                    generation: 0,
                    expires_at: issued.expires_at,
                    used_at: None,
                },
            )],
            expires_at: t0 + lifetimes.session_max,
            revoked: false,
        },
        family_id: issued.family_id,
        seed,
        step: 0,
    };

    // The honest browser's cookie jar, shared by its tabs.
    let mut jar = first;
    let mut t = t0;
    let clients = rng.random_range(1..=3);
    for _ in 0..14 {
        if run.model.revoked {
            break;
        }
        let skew = |rng: &mut StdRng| SKEWS[rng.random_range(0..SKEWS.len())];
        match rng.random_range(0..6) {
            // Tabs racing on the same cookie: all present it within the grace window.
            0 | 1 => {
                let presented = jar.clone();
                for c in 0..clients {
                    let now = t
                        + rng.random_range(0..=GRACE / 2)
                        + if c == 0 { 0 } else { skew(&mut rng) / 3 };
                    let delivered = rng.random_bool(0.8);
                    if let Ok(issued) = run.present(&presented, now).await {
                        if delivered {
                            jar = issued.refresh_token;
                        }
                    }
                }
            }
            // A rotation whose response is lost, and the retry inside the grace window (by
            // the clock of the instance that judges it, within ±grace of the one that
            // rotated): always recovers.
            2 => {
                let presented = jar.clone();
                let now = t + skew(&mut rng);
                if !matches!(run.model.decide(&presented, now), Decision::Rotate { .. }) {
                    // Not a rotation (a stale jar, say): an ordinary request, checked as such.
                    if let Ok(issued) = run.present(&presented, now).await {
                        jar = issued.refresh_token;
                    }
                    continue;
                }
                let lost = run
                    .present(&presented, now)
                    .await
                    .expect("a rotation succeeds");
                let retry_at = now + rng.random_range(-GRACE..=GRACE);
                let recovered = run.present(&presented, retry_at).await.unwrap_or_else(|e| {
                    panic!("seed {seed}: the honest retry inside grace failed: {e:?}")
                });
                assert_eq!(
                    recovered.refresh_token, lost.refresh_token,
                    "seed {seed}: converged on the lost token"
                );
                jar = recovered.refresh_token;
                run.tally.recoveries += 1;
            }
            // Time passes.
            3 => t += [1, 5, GRACE, GRACE + 1, 31, 120][rng.random_range(0..6)],
            // A thief replays an old token: a grandparent, or the parent at some time.
            4 => {
                let generations = run.model.tokens.len();
                if generations >= 2 {
                    let pick = rng.random_range(0..generations - 1);
                    let stolen = run.model.tokens[pick].0.clone();
                    let now = t + rng.random_range(0..=2 * GRACE) + skew(&mut rng);
                    let decision = run.model.decide(&stolen, now);
                    let result = run.present(&stolen, now).await;
                    if let Decision::Reuse(_) = decision {
                        assert!(matches!(result, Err(RefreshFailure::Reused(_))));
                        // Every token of the family is dead, the honest jar's included.
                        let newest = run.model.newest().to_string();
                        for token in [jar.clone(), newest, stolen] {
                            assert_eq!(
                                run.present(&token, now + 1).await.err(),
                                Some(RefreshFailure::Invalid),
                                "seed {seed}: a revoked family refuses every token"
                            );
                        }
                    }
                }
            }
            // A transaction that fails halfway is rolled back whole.
            _ => {
                let presented = jar.clone();
                run.failed_rotation(&presented, t).await;
            }
        }
    }
}

/// Runs every seed with the requests sent to `apps` in turn, and checks that every cell
/// of the matrix was reached.
async fn run_matrix(apps: &[&TestApp]) {
    let user = apps[0].register(&unique_email()).await;
    let seeds: u64 = std::env::var("RACE_MATRIX_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150);
    let mut tally = Tally::default();
    for seed in 0..seeds {
        run_seed(apps, &mut tally, &user.session.user.id, seed).await;
    }
    let t = &tally;
    for (cell, n) in [
        ("rotate", t.rotate),
        ("converge", t.converge),
        ("reuse after grace", t.reuse_after_grace),
        ("reuse of an ancestor", t.reuse_ancestor),
        ("refused in a revoked family", t.invalid),
        ("rollback", t.rollbacks),
        ("recovery of a lost response", t.recoveries),
    ] {
        assert!(n > 0, "the matrix never reached {cell}: {tally:?}");
    }
    eprintln!(
        "race matrix over {seeds} seeds on {} instance(s): {tally:?}",
        apps.len()
    );
}

#[tokio::test]
async fn the_race_matrix_holds_for_every_seed() {
    let app = spawn_app().await;
    run_matrix(&[&app]).await;
}

/// The same, each request going to the other of two instances sharing the database (each
/// with its own connections, and on SQLite its own writer queue).
#[tokio::test]
async fn the_race_matrix_holds_with_requests_split_across_two_instances() {
    let a = spawn_app().await;
    let b = a.another_instance(&[]).await;
    run_matrix(&[&a, &b]).await;
}
