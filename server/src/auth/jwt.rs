//! Access tokens: short-lived EdDSA JWTs (`typ` `at+jwt`, RFC 9068 style).
//!
//! Validation is strict and explicit: EdDSA only, a `kid` of one of our published keys
//! only, no key-locating headers (`jku`, `jwk`, `x5u`, `x5c`), every claim required, `iss`
//! and `aud` checked, and times checked against the injected clock with at most 5 s of
//! leeway. Which key signs and which verify follows from the keys' times
//! ([`super::key_set`]); the keys themselves are replaced whenever the database's change.

use super::{
    key_set::{self, KeyState},
    keys::thumbprint,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use ed25519_dalek::{pkcs8::EncodePrivateKey, SigningKey};
use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, RwLock};

pub const LEEWAY_SECS: i64 = 5;

/// How long after signing a token of lifetime `ttl_secs` may still be accepted: its
/// lifetime and the leeway. A replaced key stays published this long (see `key_set`).
pub fn token_life(ttl_secs: i64) -> i64 {
    ttl_secs + LEEWAY_SECS
}
pub const TYP: &str = "at+jwt";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: String,
    /// The session (refresh family) id.
    pub sid: String,
    pub role: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("access token expired")]
    Expired,
    #[error("access token invalid")]
    Invalid,
}

/// Signing failed: no key signs now (a key store emptied by hand), or the key could not
/// be used.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("no signing key is current")]
    NoCurrentKey,
    #[error(transparent)]
    Jwt(#[from] jsonwebtoken::errors::Error),
}

/// One public key as RFC 8037 writes it for a JWKS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
}

/// A key as the database holds it, its private half opened.
pub struct LoadedKey {
    pub key: SigningKey,
    pub signs_from: i64,
}

/// A key ready for use, knowing when the next one takes over.
struct Entry {
    kid: String,
    public: [u8; 32],
    signs_from: i64,
    replaced_at: Option<i64>,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

/// Verified tokens kept in memory, keyed by the SHA-256 of the whole token (32 bytes
/// rather than the ~400 of the token: a full cache holds ~5 MB, not ~13): a hit skips the
/// Ed25519 verification (~40 µs here) but never the time checks nor the check that its key
/// is still published. Only tokens that verified are stored, so junk cannot fill it; a
/// tampered token is another key and always misses.
const VERIFIED_CACHE_ENTRIES: usize = 16_384;

/// A token's key in the cache of verified tokens: any change to any byte of the token is
/// another key.
fn cache_key(token: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes()).into()
}

#[derive(Clone)]
struct Verified {
    claims: Arc<AccessClaims>,
    kid: Arc<str>,
    /// The key set it was verified under ([`JwtKeys::generation`]), and when its key
    /// retires by that set: while the set is the same, a hit needs no look at the keys.
    generation: u64,
    retires_at: i64,
}

pub struct JwtKeys {
    verified: quick_cache::sync::Cache<[u8; 32], Verified>,
    /// Ordered by `signs_from`, then `kid`, as [`key_set`] orders them.
    keys: RwLock<Arc<Vec<Entry>>>,
    /// Bumped whenever `keys` is replaced. Read, never written, by verifications, so the
    /// hot path of a cached token touches no lock shared between cores.
    generation: std::sync::atomic::AtomicU64,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_secs: i64,
}

impl JwtKeys {
    pub fn new(keys: Vec<LoadedKey>, issuer: &str, audience: &str, ttl_secs: i64) -> JwtKeys {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        // Times are checked below against our own clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        let jwt = JwtKeys {
            verified: quick_cache::sync::Cache::new(VERIFIED_CACHE_ENTRIES),
            keys: RwLock::new(Arc::new(Vec::new())),
            generation: std::sync::atomic::AtomicU64::new(0),
            validation,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            ttl_secs,
        };
        jwt.replace(keys);
        jwt
    }

    /// One key signing for ever: for tests and tools.
    pub fn single(key: &SigningKey, issuer: &str, audience: &str, ttl_secs: i64) -> JwtKeys {
        let loaded = LoadedKey {
            key: key.clone(),
            signs_from: 0,
        };
        JwtKeys::new(vec![loaded], issuer, audience, ttl_secs)
    }

    /// Takes `keys` (every key not yet retired) in place of the ones held.
    pub fn replace(&self, mut keys: Vec<LoadedKey>) {
        let mut entries: Vec<Entry> = keys
            .drain(..)
            .map(|loaded| {
                let public = loaded.key.verifying_key().to_bytes();
                #[allow(clippy::expect_used)] // infallible for Ed25519
                let der = loaded
                    .key
                    .to_pkcs8_der()
                    .expect("an Ed25519 key always encodes as PKCS#8");
                Entry {
                    kid: thumbprint(&public),
                    public,
                    signs_from: loaded.signs_from,
                    replaced_at: None,
                    encoding: EncodingKey::from_ed_der(der.as_bytes()),
                    decoding: DecodingKey::from_ed_der(&public),
                }
            })
            .collect();
        entries.sort_by(|a, b| (a.signs_from, &a.kid).cmp(&(b.signs_from, &b.kid)));
        for at in 1..entries.len() {
            entries[at - 1].replaced_at = Some(entries[at].signs_from);
        }
        #[allow(clippy::expect_used)] // poisoned only by a panic while swapping an Arc
        let mut held = self.keys.write().expect("key lock");
        *held = Arc::new(entries);
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn entries(&self) -> Arc<Vec<Entry>> {
        #[allow(clippy::expect_used)] // see `replace`
        self.keys.read().expect("key lock").clone()
    }

    /// How long after signing a token may still be accepted (see [`token_life`]).
    pub fn token_life(&self) -> i64 {
        token_life(self.ttl_secs)
    }

    fn state(&self, entry: &Entry, now: i64) -> KeyState {
        key_set::state(entry.signs_from, entry.replaced_at, now, self.token_life())
    }

    /// The `kid` that signs at `now`.
    pub fn current_kid(&self, now: i64) -> Option<String> {
        self.entries()
            .iter()
            .find(|e| self.state(e, now) == KeyState::Current)
            .map(|e| e.kid.clone())
    }

    /// The published keys at `now`: the next, the current and the retiring ones.
    pub fn jwks(&self, now: i64) -> Vec<Jwk> {
        self.entries()
            .iter()
            .filter(|e| self.state(e, now).is_published())
            .map(|e| Jwk {
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x: URL_SAFE_NO_PAD.encode(e.public),
                kid: e.kid.clone(),
                alg: "EdDSA".into(),
                use_: "sig".into(),
            })
            .collect()
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// Signs an access token for `user_id` in session `sid` with the key current at `now`.
    pub fn issue(
        &self,
        user_id: &str,
        sid: &str,
        role: &str,
        now: i64,
        rng: &mut impl RngCore,
    ) -> Result<String, SignError> {
        let entries = self.entries();
        let signer = entries
            .iter()
            .find(|e| self.state(e, now) == KeyState::Current)
            .ok_or(SignError::NoCurrentKey)?;
        let mut jti = [0u8; 16];
        rng.fill_bytes(&mut jti);
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_string(),
            sid: sid.to_string(),
            role: role.to_string(),
            iat: now,
            nbf: now,
            exp: now + self.ttl_secs,
            jti: URL_SAFE_NO_PAD.encode(jti),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(TYP.to_string());
        header.kid = Some(signer.kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &signer.encoding)?)
    }

    /// Verifies signature, header and claims at `now`, through the cache of verified tokens.
    pub fn verify(&self, token: &str, now: i64) -> Result<Arc<AccessClaims>, TokenError> {
        let generation = self.generation.load(std::sync::atomic::Ordering::SeqCst);
        let key = cache_key(token);
        let hit = self.verified.get(&key);
        if let Some(hit) = &hit {
            if hit.generation == generation {
                // Its key is still published exactly while it has not retired.
                if now >= hit.retires_at {
                    return Err(TokenError::Invalid);
                }
                check_times(&hit.claims, now)?;
                return Ok(hit.claims.clone());
            }
        }
        // A miss, or a hit from before the keys changed: look at the keys. (`generation`
        // was read before them: were they replaced since, this entry only misses later.)
        let entries = self.entries();
        let published = |kid: &str| {
            entries
                .iter()
                .find(|e| e.kid == kid)
                .filter(|e| self.state(e, now).is_published())
        };
        let (claims, kid) = match hit {
            // Its key may have retired (or gone) since.
            Some(hit) if published(&hit.kid).is_some() => (hit.claims, hit.kid),
            Some(_) => return Err(TokenError::Invalid),
            None => {
                let (claims, kid) = self.verify_signature(token, &published)?;
                (Arc::new(claims), Arc::from(kid))
            }
        };
        if let Some(entry) = published(&kid) {
            let retires_at = entry.replaced_at.map_or(i64::MAX, |replaced| {
                replaced.saturating_add(self.token_life())
            });
            let fresh = Verified {
                claims: claims.clone(),
                kid,
                generation,
                retires_at,
            };
            self.verified.insert(key, fresh);
        }
        check_times(&claims, now)?;
        Ok(claims)
    }

    /// Signature, header and every claim but the times; and the `kid` that verified it.
    fn verify_signature<'a>(
        &self,
        token: &str,
        published: &impl Fn(&str) -> Option<&'a Entry>,
    ) -> Result<(AccessClaims, String), TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        let header_ok = header.alg == Algorithm::EdDSA
            && header.typ.as_deref() == Some(TYP)
            && header.jku.is_none()
            && header.jwk.is_none()
            && header.x5u.is_none()
            && header.x5c.is_none();
        if !header_ok {
            return Err(TokenError::Invalid);
        }
        let kid = header.kid.ok_or(TokenError::Invalid)?;
        let entry = published(&kid).ok_or(TokenError::Invalid)?;
        let data = jsonwebtoken::decode::<AccessClaims>(token, &entry.decoding, &self.validation)
            .map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid,
        })?;
        Ok((data.claims, kid))
    }
}

/// `nbf` and `iat` not in the future, `exp` not past, each with the leeway.
fn check_times(claims: &AccessClaims, now: i64) -> Result<(), TokenError> {
    if claims.nbf > now + LEEWAY_SECS || claims.iat > now + LEEWAY_SECS {
        return Err(TokenError::Invalid);
    }
    if now >= claims.exp + LEEWAY_SECS {
        return Err(TokenError::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn keys() -> JwtKeys {
        JwtKeys::single(
            &SigningKey::from_bytes(&[7u8; 32]),
            "https://iss",
            "https://aud",
            900,
        )
    }

    #[test]
    fn an_issued_token_verifies_with_every_claim() {
        let keys = keys();
        let token = keys
            .issue("user-1", "sid-1", "admin", NOW, &mut rand::rng())
            .unwrap();
        let claims = keys.verify(&token, NOW + 1).unwrap();
        assert_eq!(claims.sub, "user-1");
        assert_eq!(claims.sid, "sid-1");
        assert_eq!(claims.role, "admin");
        assert_eq!((claims.iat, claims.nbf, claims.exp), (NOW, NOW, NOW + 900));
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.kid, keys.current_kid(NOW));
    }

    #[test]
    fn expiry_allows_at_most_five_seconds_of_leeway() {
        let keys = keys();
        let token = keys.issue("u", "s", "user", NOW, &mut rand::rng()).unwrap();
        assert!(keys.verify(&token, NOW + 904).is_ok());
        assert_eq!(keys.verify(&token, NOW + 905), Err(TokenError::Expired));
    }

    #[test]
    fn cached_tokens_still_expire() {
        let keys = keys();
        let token = keys.issue("u", "s", "user", NOW, &mut rand::rng()).unwrap();
        assert!(keys.verify(&token, NOW).is_ok());
        assert!(
            keys.verified.get(&cache_key(&token)).is_some(),
            "cached after a success"
        );
        assert_eq!(keys.verify(&token, NOW + 905), Err(TokenError::Expired));
        let tampered = token.replacen('.', ".x", 1);
        assert_eq!(keys.verify(&tampered, NOW), Err(TokenError::Invalid));
        assert!(
            keys.verified.get(&cache_key(&tampered)).is_none(),
            "failures are not cached"
        );
    }

    #[test]
    fn a_token_from_the_future_is_invalid() {
        let keys = keys();
        let token = keys
            .issue("u", "s", "user", NOW + 60, &mut rand::rng())
            .unwrap();
        assert_eq!(keys.verify(&token, NOW), Err(TokenError::Invalid));
        assert!(keys.verify(&token, NOW + 55).is_ok());
    }

    #[test]
    fn another_key_or_audience_is_refused() {
        let token = keys()
            .issue("u", "s", "user", NOW, &mut rand::rng())
            .unwrap();
        let other = JwtKeys::single(
            &SigningKey::from_bytes(&[8u8; 32]),
            "https://iss",
            "https://aud",
            900,
        );
        assert_eq!(other.verify(&token, NOW), Err(TokenError::Invalid));
        let other_aud = JwtKeys::single(
            &SigningKey::from_bytes(&[7u8; 32]),
            "https://iss",
            "https://x",
            900,
        );
        assert_eq!(other_aud.verify(&token, NOW), Err(TokenError::Invalid));
    }

    #[test]
    fn a_rotation_signs_with_the_new_key_when_due_and_retires_the_old_one() {
        let old = SigningKey::from_bytes(&[7u8; 32]);
        let new = SigningKey::from_bytes(&[9u8; 32]);
        let keys = JwtKeys::single(&old, "https://iss", "https://aud", 900);
        let before = keys.issue("u", "s", "user", NOW, &mut rand::rng()).unwrap();
        assert!(keys.verify(&before, NOW).is_ok(), "cached now");
        let old_kid = keys.current_kid(NOW).unwrap();
        // Rotated at NOW, signing from NOW + 600.
        keys.replace(vec![
            LoadedKey {
                key: old.clone(),
                signs_from: 0,
            },
            LoadedKey {
                key: new.clone(),
                signs_from: NOW + 600,
            },
        ]);
        let kids = |at| -> Vec<String> { keys.jwks(at).into_iter().map(|k| k.kid).collect() };
        assert_eq!(
            kids(NOW).len(),
            2,
            "the next key is published before it signs"
        );
        assert_eq!(keys.current_kid(NOW + 599), Some(old_kid.clone()));
        let new_kid = keys.current_kid(NOW + 600).unwrap();
        assert_ne!(new_kid, old_kid);
        let after = keys
            .issue("u", "s", "user", NOW + 600, &mut rand::rng())
            .unwrap();
        let header = jsonwebtoken::decode_header(&after).unwrap();
        assert_eq!(header.kid, Some(new_kid.clone()));
        assert!(keys.verify(&after, NOW + 601).is_ok());
        // A token the old key signed last, at NOW + 599, lives until NOW + 1499 (+ 5 s).
        let last_old = keys
            .issue("u", "s", "user", NOW + 599, &mut rand::rng())
            .unwrap();
        assert!(keys.verify(&last_old, NOW + 1503).is_ok());
        assert_eq!(kids(NOW + 1504).len(), 2);
        assert_eq!(kids(NOW + 600 + 905), [new_kid]);
        // Retired: its tokens do not verify, even one signed to live longer, even cached.
        let long = JwtKeys::single(&old, "https://iss", "https://aud", 100_000)
            .issue("u", "s", "user", NOW, &mut rand::rng())
            .unwrap();
        assert!(keys.verify(&long, NOW + 1000).is_ok());
        assert_eq!(keys.verify(&long, NOW + 1505), Err(TokenError::Invalid));
        assert_eq!(keys.verify(&before, NOW + 1505), Err(TokenError::Invalid));
    }

    #[test]
    fn the_jwks_names_each_key_as_rfc_8037_does() {
        let keys = keys();
        let jwks = serde_json::to_value(keys.jwks(NOW)).unwrap();
        let public = SigningKey::from_bytes(&[7u8; 32])
            .verifying_key()
            .to_bytes();
        assert_eq!(
            jwks,
            serde_json::json!([{
                "kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(public),
                "kid": thumbprint(&public), "alg": "EdDSA", "use": "sig"
            }])
        );
    }
}
