//! Password hashing: Argon2id with OWASP's parameters, in PHC strings.
//!
//! Hashing is deliberately slow, so it runs on a blocking pool behind a semaphore sized
//! to the cores: a login flood queues there instead of stalling the async workers, and a
//! login that cannot get a permit within a short wait is told to come back (503).
//!
//! That pool is hashing's own, its threads at low priority, with a long slice, one to a
//! core (`auth/hash_threads.rs` says why): logins still use the whole machine, and the
//! threads serving other requests run as soon as they wake.

use argon2::{
    password_hash::{
        rand_core::{OsRng, RngCore},
        PasswordHash,
    },
    Algorithm, Argon2, Block, Params, Version,
};
use base64::{engine::general_purpose::STANDARD_NO_PAD, Engine as _};
use secrecy::{ExposeSecret, SecretString};
use std::cell::RefCell;
use std::{sync::Arc, time::Duration};
use subtle::ConstantTimeEq;

use super::hash_threads::HashingPool;
use tokio::sync::Semaphore;

/// OWASP: m=19456 KiB, t=2, p=1.
pub const M_COST: u32 = 19_456;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// No permit within the wait: the server is saturated with hashing.
    #[error("password hashing is saturated")]
    Overloaded,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    pub valid: bool,
    /// The stored hash uses other parameters: re-hash now that we know the password.
    pub needs_rehash: bool,
}

#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    wait: Duration,
    /// Verified against when the email is unknown, so both failures cost the same.
    dummy_hash: Arc<str>,
    pool: Arc<HashingPool>,
    /// Hashes and verifications asked for since start: what reached the hashing pool.
    asked: Arc<std::sync::atomic::AtomicU64>,
    /// Hashes and verifications waiting for a permit now: the queue (`auth_hash_queue`).
    waiting: Arc<std::sync::atomic::AtomicUsize>,
}

fn argon2() -> Argon2<'static> {
    #[allow(clippy::expect_used)] // constants checked by the tests below
    let params = Params::new(M_COST, T_COST, P_COST, None).expect("OWASP parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

thread_local! {
    /// Argon2's working memory (19 MiB), kept by each hashing thread. Allocating and
    /// freeing it per hash made the low-priority hashing threads take the process's memory
    /// locks, and request threads waiting on those inherited the low priority: the p99 of
    /// `/healthz` under a login flood was 2.6 ms against 0.03 ms idle.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

fn compute(
    argon: &Argon2,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let blocks = argon.params().block_count();
    MEMORY.with_borrow_mut(|memory| {
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        argon.hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
    })
}

fn hash_blocking(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    let mut out = [0u8; 32];
    compute(&argon2(), password.as_bytes(), &salt, &mut out)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    // The PHC string format: standard base64 without padding.
    Ok(format!(
        "$argon2id$v=19$m={M_COST},t={T_COST},p={P_COST}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    ))
}

/// Checks `password` against a PHC string with the parameters written in it.
fn matches(password: &str, parsed: &PasswordHash) -> Option<bool> {
    let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
    let version = Version::try_from(parsed.version.unwrap_or(0x13)).ok()?;
    let params = Params::try_from(parsed).ok()?;
    let expected = parsed.hash?;
    let mut salt = [0u8; 64];
    let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
    let mut out = vec![0u8; expected.len()];
    compute(
        &Argon2::new(algorithm, version, params),
        password.as_bytes(),
        salt,
        &mut out,
    )
    .ok()?;
    Some(bool::from(out.as_slice().ct_eq(expected.as_bytes())))
}

fn verify_blocking(password: &str, phc: &str) -> Verified {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return Verified {
            valid: false,
            needs_rehash: false,
        };
    };
    let valid = matches(password, &parsed).unwrap_or(false);
    let current = parsed.algorithm.as_str() == "argon2id"
        && parsed.version == Some(Version::V0x13.into())
        && Params::try_from(&parsed)
            .is_ok_and(|p| p.m_cost() == M_COST && p.t_cost() == T_COST && p.p_cost() == P_COST);
    Verified {
        valid,
        needs_rehash: valid && !current,
    }
}

/// Median wall time of one hash on this machine, in milliseconds (for the benchmark).
pub fn median_hash_ms(samples: usize) -> f64 {
    let mut times: Vec<f64> = (0..samples.max(1))
        .map(|_| {
            let started = std::time::Instant::now();
            let _ = hash_blocking("benchmark password");
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// One place in the queue, left on drop: also when the login waiting in it is given up
/// (its client went away, or the request's time limit cut it).
struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a std::sync::atomic::AtomicUsize) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Passwords {
    /// `permits` concurrent hashes at most; callers wait up to `wait` for one.
    pub fn new(permits: usize, wait: Duration) -> Result<Passwords, PasswordError> {
        let dummy = hash_blocking("dummy password that matches nothing")?;
        let permits = permits.max(1);
        let pool = HashingPool::new(permits).map_err(|e| PasswordError::Hash(e.to_string()))?;
        Ok(Passwords {
            permits: Arc::new(Semaphore::new(permits)),
            wait,
            dummy_hash: dummy.into(),
            pool: Arc::new(pool),
            asked: Arc::default(),
            waiting: Arc::default(),
        })
    }

    /// How many hashes and verifications were asked of the pool since start.
    pub fn asked(&self) -> u64 {
        self.asked.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many hashes and verifications wait for a hashing thread now. The pool never
    /// queues (it has a thread a permit): this is where a login flood waits.
    pub fn queued(&self) -> usize {
        self.waiting.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// One permit per available core.
    pub fn for_this_machine() -> Result<Passwords, PasswordError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Passwords::new(cores, Duration::from_secs(2))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        self.asked
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let in_queue = Waiting::new(&self.waiting);
        let permit = tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| PasswordError::Overloaded)?
            .map_err(|_| PasswordError::Overloaded)?;
        drop(in_queue);
        self.pool
            .spawn(permit, f)
            .await
            .map_err(|e| PasswordError::Hash(e.to_string()))
    }

    pub async fn hash(&self, password: &SecretString) -> Result<String, PasswordError> {
        let password = password.clone();
        self.blocking(move || hash_blocking(password.expose_secret()))
            .await?
    }

    /// Verifies against `phc`, or against the dummy hash when there is no account, so an
    /// unknown email and a wrong password take the same time.
    pub async fn verify(
        &self,
        password: &SecretString,
        phc: Option<&str>,
    ) -> Result<Verified, PasswordError> {
        let known = phc.is_some();
        let phc: Arc<str> = phc.map_or_else(|| self.dummy_hash.clone(), Arc::from);
        let password = password.clone();
        let verified = self
            .blocking(move || verify_blocking(password.expose_secret(), &phc))
            .await?;
        Ok(if known {
            verified
        } else {
            Verified {
                valid: false,
                needs_rehash: false,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let passwords = Passwords::new(2, Duration::from_secs(5)).unwrap();
        let phc = passwords.hash(&secret("correct horse")).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        // The stock verifier agrees: our PHC strings are standard.
        use argon2::password_hash::PasswordVerifier as _;
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"wrong", &parsed)
            .is_err());
        let ok = passwords
            .verify(&secret("correct horse"), Some(&phc))
            .await
            .unwrap();
        assert_eq!(
            ok,
            Verified {
                valid: true,
                needs_rehash: false
            }
        );
        let bad = passwords
            .verify(&secret("wrong horse"), Some(&phc))
            .await
            .unwrap();
        assert!(!bad.valid);
    }

    #[tokio::test]
    async fn older_parameters_verify_and_ask_for_a_rehash() {
        let passwords = Passwords::new(1, Duration::from_secs(5)).unwrap();
        let old = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(8192, 3, 1, None).unwrap(),
        );
        use argon2::password_hash::{PasswordHasher as _, SaltString};
        let salt = SaltString::generate(&mut OsRng);
        let phc = old
            .hash_password(b"old password", &salt)
            .unwrap()
            .to_string();
        let v = passwords
            .verify(&secret("old password"), Some(&phc))
            .await
            .unwrap();
        assert_eq!(
            v,
            Verified {
                valid: true,
                needs_rehash: true
            }
        );
        let v = passwords
            .verify(&secret("not it"), Some(&phc))
            .await
            .unwrap();
        assert_eq!(
            v,
            Verified {
                valid: false,
                needs_rehash: false
            }
        );
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies() {
        let passwords = Passwords::new(1, Duration::from_secs(5)).unwrap();
        for p in ["dummy password that matches nothing", "anything"] {
            let v = passwords.verify(&secret(p), None).await.unwrap();
            assert!(!v.valid);
        }
    }

    #[tokio::test]
    async fn a_saturated_hasher_answers_overloaded() {
        let passwords = Passwords::new(1, Duration::from_millis(20)).unwrap();
        let _held = passwords.permits.clone().acquire_owned().await.unwrap();
        let e = passwords.hash(&secret("password")).await.unwrap_err();
        assert!(matches!(e, PasswordError::Overloaded), "{e}");
    }

    #[tokio::test]
    async fn the_queue_counts_who_waits_for_a_permit_until_they_get_one_or_give_up() {
        let passwords = Passwords::new(1, Duration::from_secs(30)).unwrap();
        let held = passwords.permits.clone().acquire_owned().await.unwrap();
        assert_eq!(passwords.queued(), 0);
        let spawn_waiter = || {
            let passwords = passwords.clone();
            tokio::spawn(async move { passwords.blocking(|| ()).await })
        };
        let (first, second) = (spawn_waiter(), spawn_waiter());
        let watched = &passwords;
        let queued = move |n| async move {
            for _ in 0..500 {
                if watched.queued() == n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("expected {n} in the queue, found {}", watched.queued());
        };
        queued(2).await;
        second.abort(); // its client went away
        let _ = second.await;
        queued(1).await;
        drop(held);
        assert!(first.await.unwrap().is_ok());
        assert_eq!(passwords.queued(), 0);
    }

    #[tokio::test]
    async fn a_caller_that_gives_up_holds_the_permit_until_its_hash_ends() {
        let passwords = Passwords::new(1, Duration::from_millis(50)).unwrap();
        let (started, has_started) = tokio::sync::oneshot::channel();
        let (finish, may_finish) = std::sync::mpsc::channel::<()>();
        let caller = tokio::spawn({
            let passwords = passwords.clone();
            async move {
                passwords
                    .blocking(move || {
                        let _ = started.send(());
                        let _ = may_finish.recv();
                    })
                    .await
            }
        });
        has_started.await.unwrap();
        caller.abort(); // the client went away; its hash still runs
        let _ = caller.await;
        let e = passwords.blocking(|| ()).await.unwrap_err();
        assert!(matches!(e, PasswordError::Overloaded), "{e}");
        finish.send(()).unwrap();
        assert!(passwords.blocking(|| ()).await.is_ok());
    }
}
