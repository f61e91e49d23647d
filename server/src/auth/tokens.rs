//! Refresh token material: the random first token of a login, its derived children, and
//! the hash under which each is stored.
//!
//! Why derive children instead of drawing them at random: convergence must hand a racing
//! tab the *same* newest token its twin received, yet the database keeps only hashes. A
//! child is `HMAC-SHA256(server secret, family id ‖ generation ‖ parent token)`, so whoever
//! presents the parent (within the grace window) can be given the child again by
//! recomputing it, and nobody can compute it without both the parent and the secret. No
//! token is ever stored in plaintext, not even for the grace window.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// 32 bytes in base64url without padding.
pub const TOKEN_LEN: usize = 43;

/// The server secret of `AUTH_SECRET_FILE`. Never logged.
#[derive(Clone)]
pub struct ServerSecret([u8; 32]);

impl ServerSecret {
    pub fn new(bytes: [u8; 32]) -> ServerSecret {
        ServerSecret(bytes)
    }

    /// `HMAC-SHA256(secret, purpose ‖ 0 ‖ data)` in base64url: a keyed digest for values
    /// too short to store under a plain hash (a 6-digit code has only a million values).
    pub fn digest(&self, purpose: &str, data: &[&str]) -> String {
        #[allow(clippy::expect_used)] // HMAC takes keys of any length
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        for part in data {
            mac.update(b"\0");
            mac.update(part.as_bytes());
        }
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

impl std::fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecret(..)")
    }
}

/// The first token of a new family: 256 random bits.
pub fn random_token(rng: &mut impl RngCore) -> String {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The token of generation `generation` in `family`, derived from its parent.
pub fn child_token(secret: &ServerSecret, family: &str, generation: i64, parent: &str) -> String {
    #[allow(clippy::expect_used)] // HMAC takes keys of any length
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret.0).expect("HMAC takes any key length");
    mac.update(b"refresh-token/v1\0");
    mac.update(family.as_bytes());
    mac.update(b"\0");
    mac.update(&generation.to_be_bytes());
    mac.update(parent.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// The stored form of a token. A plain SHA-256 suffices: the input has 256 bits of entropy.
pub fn hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// Cheap syntactic check, so junk never reaches the database.
pub fn looks_valid(token: &str) -> bool {
    token.len() == TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_256_bits_and_the_expected_shape() {
        let a = random_token(&mut rand::rng());
        let b = random_token(&mut rand::rng());
        assert_ne!(a, b);
        assert!(looks_valid(&a), "{a}");
        let child = child_token(&ServerSecret::new([1; 32]), "fam", 1, &a);
        assert!(looks_valid(&child), "{child}");
        assert!(!looks_valid("short"));
        assert!(!looks_valid(&format!("{}=", &a[..42])));
    }

    #[test]
    fn children_are_deterministic_and_bound_to_every_input() {
        let secret = ServerSecret::new([1; 32]);
        let parent = random_token(&mut rand::rng());
        let child = child_token(&secret, "fam", 1, &parent);
        assert_eq!(child, child_token(&secret, "fam", 1, &parent));
        assert_ne!(
            child,
            child_token(&ServerSecret::new([2; 32]), "fam", 1, &parent)
        );
        assert_ne!(child, child_token(&secret, "fam2", 1, &parent));
        assert_ne!(child, child_token(&secret, "fam", 2, &parent));
        assert_ne!(
            child,
            child_token(&secret, "fam", 1, &random_token(&mut rand::rng()))
        );
    }

    #[test]
    fn the_hash_differs_from_the_token() {
        let t = random_token(&mut rand::rng());
        assert_ne!(hash(&t), t);
        assert_eq!(hash(&t), hash(&t));
        assert!(!format!("{:?}", ServerSecret::new([9; 32])).contains('9'));
    }
}
