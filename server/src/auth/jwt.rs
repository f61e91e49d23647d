//! Access tokens: short-lived EdDSA JWTs (`typ` `at+jwt`, RFC 9068 style).
//!
//! Validation is strict and explicit: EdDSA only, our `kid` only, no key-locating headers
//! (`jku`, `jwk`, `x5u`, `x5c`), every claim required, `iss` and `aud` checked, and times
//! checked against the injected clock with at most 5 s of leeway.

use super::keys::thumbprint;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use ed25519_dalek::{pkcs8::EncodePrivateKey, SigningKey};
use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const LEEWAY_SECS: i64 = 5;
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

/// Verified tokens kept in memory, keyed by the whole token string: a hit skips the
/// Ed25519 verification (~40 µs here) but never the time checks. Only tokens that verified
/// are stored, so junk cannot fill it; a tampered token is another key and always misses.
const VERIFIED_CACHE_ENTRIES: usize = 16_384;

pub struct JwtKeys {
    verified: quick_cache::sync::Cache<String, Arc<AccessClaims>>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_secs: i64,
}

impl JwtKeys {
    pub fn new(key: &SigningKey, issuer: &str, audience: &str, ttl_secs: i64) -> JwtKeys {
        let public = key.verifying_key().to_bytes();
        #[allow(clippy::expect_used)] // start-up, and infallible for Ed25519
        let der = key
            .to_pkcs8_der()
            .expect("an Ed25519 key always encodes as PKCS#8");
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        // Times are checked below against our own clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        JwtKeys {
            verified: quick_cache::sync::Cache::new(VERIFIED_CACHE_ENTRIES),
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            decoding: DecodingKey::from_ed_der(&public),
            kid: thumbprint(&public),
            validation,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            ttl_secs,
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// Signs an access token for `user_id` in session `sid`.
    pub fn issue(
        &self,
        user_id: &str,
        sid: &str,
        role: &str,
        now: i64,
        rng: &mut impl RngCore,
    ) -> Result<String, jsonwebtoken::errors::Error> {
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
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
    }

    /// Verifies signature, header and claims at `now`, through the cache of verified tokens.
    pub fn verify(&self, token: &str, now: i64) -> Result<Arc<AccessClaims>, TokenError> {
        let claims = match self.verified.get(token) {
            Some(claims) => claims,
            None => {
                let claims = Arc::new(self.verify_signature(token)?);
                self.verified.insert(token.to_string(), claims.clone());
                claims
            }
        };
        check_times(&claims, now)?;
        Ok(claims)
    }

    /// Signature, header and every claim but the times.
    fn verify_signature(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        let header_ok = header.alg == Algorithm::EdDSA
            && header.typ.as_deref() == Some(TYP)
            && header.kid.as_deref() == Some(self.kid.as_str())
            && header.jku.is_none()
            && header.jwk.is_none()
            && header.x5u.is_none()
            && header.x5c.is_none();
        if !header_ok {
            return Err(TokenError::Invalid);
        }
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        Ok(data.claims)
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
        JwtKeys::new(
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
        assert_eq!(header.kid.as_deref(), Some(keys.kid()));
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
            keys.verified.get(token.as_str()).is_some(),
            "cached after a success"
        );
        assert_eq!(keys.verify(&token, NOW + 905), Err(TokenError::Expired));
        let tampered = token.replacen('.', ".x", 1);
        assert_eq!(keys.verify(&tampered, NOW), Err(TokenError::Invalid));
        assert!(
            keys.verified.get(tampered.as_str()).is_none(),
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
        let other = JwtKeys::new(
            &SigningKey::from_bytes(&[8u8; 32]),
            "https://iss",
            "https://aud",
            900,
        );
        assert_eq!(other.verify(&token, NOW), Err(TokenError::Invalid));
        let other_aud = JwtKeys::new(
            &SigningKey::from_bytes(&[7u8; 32]),
            "https://iss",
            "https://x",
            900,
        );
        assert_eq!(other_aud.verify(&token, NOW), Err(TokenError::Invalid));
    }
}
