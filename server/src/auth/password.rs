//! Password hashing: Argon2id with OWASP's parameters, in PHC strings.
//!
//! Hashing is deliberately slow, so it runs on the blocking pool behind a semaphore sized
//! to the cores: a login flood queues there instead of stalling the async workers, and a
//! login that cannot get a permit within a short wait is told to come back (503).

use argon2::{
    password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString},
    Algorithm, Argon2, Params, Version,
};
use secrecy::{ExposeSecret, SecretString};
use std::{sync::Arc, time::Duration};
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
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(M_COST, T_COST, P_COST, None).expect("OWASP parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_blocking(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

fn verify_blocking(password: &str, phc: &str) -> Verified {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return Verified {
            valid: false,
            needs_rehash: false,
        };
    };
    // Verification follows the parameters inside the PHC string, old ones included.
    let valid = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    let current = parsed.algorithm.as_str() == "argon2id"
        && parsed.version == Some(Version::V0x13.into())
        && Params::try_from(&parsed)
            .is_ok_and(|p| p.m_cost() == M_COST && p.t_cost() == T_COST && p.p_cost() == P_COST);
    Verified {
        valid,
        needs_rehash: valid && !current,
    }
}

impl Passwords {
    /// `permits` concurrent hashes at most; callers wait up to `wait` for one.
    pub fn new(permits: usize, wait: Duration) -> Result<Passwords, PasswordError> {
        let dummy = hash_blocking("dummy password that matches nothing")?;
        Ok(Passwords {
            permits: Arc::new(Semaphore::new(permits.max(1))),
            wait,
            dummy_hash: dummy.into(),
        })
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
        let _permit = tokio::time::timeout(self.wait, self.permits.acquire())
            .await
            .map_err(|_| PasswordError::Overloaded)?
            .map_err(|_| PasswordError::Overloaded)?;
        tokio::task::spawn_blocking(f)
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
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
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
}
