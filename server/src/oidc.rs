//! Signing in with OpenID Connect providers, the part that talks to them: discovery (kept
//! up in the background, so a provider that is down stops neither the server nor password
//! sign-in), the authorization request (code flow, PKCE S256, `state`, `nonce`), the code
//! exchange and the ID token's checks (signature against the provider's published keys,
//! `iss`, `aud`, `azp`, `exp`, `nonce`). No database and no axum here: the services decide
//! what a verified identity signs into.
//!
//! Every call to a provider has a time limit, and redirects are never followed (a provider
//! that answers with one is answering wrongly, and following it would let a document's
//! URLs lead the server anywhere).

use crate::config::ProviderSettings;
use openidconnect::{
    core::{
        CoreClient, CoreIdToken, CoreIdTokenClaims, CoreIdTokenVerifier, CoreJwsSigningAlgorithm,
        CoreProviderMetadata, CoreResponseType,
    },
    AuthenticationFlow, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, SignatureVerificationError,
};
use secrecy::ExposeSecret;
use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

/// The longest a call to a provider may take, connection included.
const CALL_LIMIT: Duration = Duration::from_secs(10);
/// Discovery is read again this often while it works (new signing keys are picked up then,
/// or at once when an ID token names a key not yet known).
const REDISCOVER_EVERY: Duration = Duration::from_secs(3600);
/// A failed discovery is retried after 1 s, doubling up to this.
const RETRY_AT_MOST: Duration = Duration::from_secs(60);
/// The longest a callback's work at the provider may take in all (the code exchange, and
/// reading its keys again once): the callback answers well within the request limit.
const EXCHANGE_LIMIT: Duration = Duration::from_secs(15);
/// An ID token naming a key not yet known has the keys read again, at most this often (a
/// stream of forged tokens must not make the server hammer the provider).
const REREAD_KEYS_EVERY: Duration = Duration::from_secs(60);

/// The signing algorithms an ID token may use: the asymmetric ones (never `none`, never an
/// HMAC keyed with the client secret, which anyone holding the secret could forge).
const ALGORITHMS: [CoreJwsSigningAlgorithm; 10] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EcdsaP521Sha512,
    CoreJwsSigningAlgorithm::EdDsa,
];

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OidcError {
    /// Its discovery document has not been read yet (or not since start).
    #[error("the provider cannot be reached")]
    Unavailable,
    /// The exchange or the checks failed; the reason is for the log only.
    #[error("{0}")]
    Failed(String),
}

/// What a provider vouched for, after every check of its ID token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Asserted {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
}

/// A new authorization request: the URL to send the browser to, and what the callback
/// must find again (kept by the server, never given to the browser but in that URL).
pub struct Authorization {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// The configured providers, in the order of `OIDC_PROVIDERS`.
pub struct Providers {
    list: Vec<Arc<Provider>>,
}

pub struct Provider {
    pub settings: ProviderSettings,
    redirect: RedirectUrl,
    http: reqwest::Client,
    discovered: RwLock<Option<Arc<Client>>>,
    /// When the keys were last read again for an unknown key.
    keys_reread: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Providers {
    /// The providers of `settings`, none discovered yet: call [`Providers::keep_discovered`].
    /// `public_url` makes each redirect URI (`<PUBLIC_URL>/api/auth/oidc/<id>/callback`).
    pub fn new(settings: &[ProviderSettings], public_url: &str) -> Result<Providers, String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CALL_LIMIT)
            .timeout(CALL_LIMIT)
            .build()
            .map_err(|e| format!("cannot build the HTTP client for identity providers: {e}"))?;
        let list = settings
            .iter()
            .map(|s| {
                let redirect =
                    RedirectUrl::new(format!("{public_url}/api/auth/oidc/{}/callback", s.id))
                        .map_err(|e| format!("the redirect URI of {}: {e}", s.id))?;
                Ok(Arc::new(Provider {
                    settings: s.clone(),
                    redirect,
                    http: http.clone(),
                    discovered: RwLock::new(None),
                    keys_reread: std::sync::Mutex::new(None),
                }))
            })
            .collect::<Result<_, String>>()?;
        Ok(Providers { list })
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Provider>> {
        self.list.iter().find(|p| p.settings.id == id)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Provider>> {
        self.list.iter()
    }

    /// Starts, for each provider, a task that reads its discovery document and keeps it up
    /// to date, retrying with backoff while the provider cannot be reached. The tasks end
    /// with the runtime.
    pub fn keep_discovered(&self) {
        for provider in &self.list {
            tokio::spawn(provider.clone().discovery_loop());
        }
    }
}

impl Provider {
    async fn discovery_loop(self: Arc<Self>) {
        let mut delay = Duration::from_secs(1);
        loop {
            match self.discover().await {
                Ok(()) => {
                    delay = Duration::from_secs(1);
                    tokio::time::sleep(REDISCOVER_EVERY).await;
                }
                Err(reason) => {
                    tracing::warn!(
                        provider = %self.settings.id,
                        %reason,
                        retry_in_secs = delay.as_secs(),
                        "identity provider discovery failed"
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(RETRY_AT_MOST);
                }
            }
        }
    }

    /// Reads the discovery document and its keys; on success they replace the ones held.
    async fn discover(&self) -> Result<(), String> {
        let issuer = IssuerUrl::new(self.settings.issuer.clone()).map_err(|e| e.to_string())?;
        // The crate checks that the document names exactly this issuer.
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| error_chain(&e))?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            self.settings
                .client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.expose_secret().to_string())),
        )
        .set_redirect_uri(self.redirect.clone());
        if let Ok(mut held) = self.discovered.write() {
            *held = Some(Arc::new(client));
        }
        tracing::info!(provider = %self.settings.id, "identity provider discovered");
        Ok(())
    }

    fn may_reread_keys(&self) -> bool {
        let Ok(mut last) = self.keys_reread.lock() else {
            return false;
        };
        let now = std::time::Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < REREAD_KEYS_EVERY) {
            return false;
        }
        *last = Some(now);
        true
    }

    fn client(&self) -> Option<Arc<Client>> {
        self.discovered.read().ok().and_then(|held| held.clone())
    }

    /// True once its discovery document has been read.
    pub fn is_available(&self) -> bool {
        self.client().is_some()
    }

    /// A new authorization request (a fresh `state`, `nonce` and PKCE verifier).
    pub fn authorize(&self) -> Result<Authorization, OidcError> {
        let client = self.client().ok_or(OidcError::Unavailable)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let scopes = self
            .settings
            .scopes
            .iter()
            // The crate asks for `openid` itself.
            .filter(|s| s.as_str() != "openid")
            .map(|s| Scope::new(s.clone()));
        let (url, state, nonce) = client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scopes(scopes)
            .set_pkce_challenge(challenge)
            .url();
        Ok(Authorization {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges `code` (with the flow's PKCE verifier) and checks the ID token against the
    /// flow's `nonce`, within [`EXCHANGE_LIMIT`]. The provider's tokens go no further than
    /// this function.
    pub async fn exchange(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<Asserted, OidcError> {
        tokio::time::timeout(
            EXCHANGE_LIMIT,
            self.exchange_unbounded(code, pkce_verifier, nonce),
        )
        .await
        .unwrap_or_else(|_| Err(OidcError::Failed("the provider took too long".into())))
    }

    async fn exchange_unbounded(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<Asserted, OidcError> {
        let client = self
            .client()
            .ok_or_else(|| OidcError::Failed("the provider is not discovered".into()))?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| OidcError::Failed(error_chain(&e)))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::Failed(format!("code exchange: {}", error_chain(&e))))?;
        let id_token = openidconnect::TokenResponse::id_token(&response)
            .ok_or_else(|| OidcError::Failed("the token response has no ID token".into()))?;
        self.assert(client, id_token, nonce).await
    }

    /// Checks `id_token` as the callback checks the one its code exchange brings back. For
    /// ID tokens obtained some other way: the integration tests hand it tokens the test
    /// provider really issued, to another client or with another nonce, which the code
    /// exchange of a correct provider never brings.
    pub async fn check_id_token(&self, id_token: &str, nonce: &str) -> Result<Asserted, OidcError> {
        let client = self
            .client()
            .ok_or_else(|| OidcError::Failed("the provider is not discovered".into()))?;
        let id_token: CoreIdToken = id_token
            .parse()
            .map_err(|e| OidcError::Failed(format!("ID token: {e}")))?;
        tokio::time::timeout(EXCHANGE_LIMIT, self.assert(client, &id_token, nonce))
            .await
            .unwrap_or_else(|_| Err(OidcError::Failed("the provider took too long".into())))
    }

    /// What `id_token` asserts, once it passed every check against the flow's `nonce`.
    async fn assert(
        &self,
        client: Arc<Client>,
        id_token: &CoreIdToken,
        nonce: &str,
    ) -> Result<Asserted, OidcError> {
        let nonce = Nonce::new(nonce.to_string());
        let check = |client: &Client| verify(client.id_token_verifier(), id_token, &nonce);
        let failed = |e: &ClaimsVerificationError| {
            OidcError::Failed(format!("ID token: {}", error_chain(e)))
        };
        let claims = match check(&client) {
            Ok(claims) => claims,
            // Signed with a key published since discovery: read the keys again (once, and
            // not more than once a minute), then check again.
            Err(
                e @ ClaimsVerificationError::SignatureVerification(
                    SignatureVerificationError::NoMatchingKey,
                ),
            ) if self.may_reread_keys() => {
                self.discover().await.map_err(|_| failed(&e))?;
                let fresh = self.client().ok_or_else(|| failed(&e))?;
                check(&fresh).map_err(|e| failed(&e))?
            }
            Err(e) => return Err(failed(&e)),
        };
        Ok(Asserted {
            subject: claims.subject().to_string(),
            email: claims.email().map(|e| e.to_string()),
            email_verified: claims.email_verified().unwrap_or(false),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string()),
        })
    }
}

/// The ID token's claims, when it passes every check of `verifier` (signature against the
/// provider's keys, `iss`, `aud`, `azp`, `exp`, `nonce`) and is signed with one of
/// [`ALGORITHMS`]: a confidential client's verifier would otherwise also take an HMAC keyed
/// by the client secret.
fn verify(
    verifier: CoreIdTokenVerifier<'_>,
    id_token: &CoreIdToken,
    nonce: &Nonce,
) -> Result<CoreIdTokenClaims, ClaimsVerificationError> {
    id_token
        .claims(&verifier.set_allowed_algs(ALGORITHMS), nonce)
        .cloned()
}

/// An error with its causes, for the log.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    //! The checks an ID token passes here, with tokens signed by a test key: the real test
    //! provider (see the integration tests) never issues a token for another client or
    //! with another nonce.
    use super::*;
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use openidconnect::{
        core::{CoreEdDsaPrivateSigningKey, CoreHmacKey, CoreJsonWebKeySet},
        Audience, EmptyAdditionalClaims, EndUserEmail, JsonWebKeyId, PrivateSigningKey,
        StandardClaims, SubjectIdentifier,
    };

    const ISSUER: &str = "https://issuer.example";
    const CLIENT: &str = "our-client";
    const SECRET: &str = "our-client-secret";

    fn key() -> CoreEdDsaPrivateSigningKey {
        let pem = ed25519_dalek::SigningKey::from_bytes(&[7; 32])
            .to_pkcs8_pem(Default::default())
            .unwrap();
        CoreEdDsaPrivateSigningKey::from_ed25519_pem(&pem, Some(JsonWebKeyId::new("k1".into())))
            .unwrap()
    }

    /// Our client's verifier, as `Client::id_token_verifier` makes it for a confidential
    /// client, with the provider's published keys.
    fn verifier() -> CoreIdTokenVerifier<'static> {
        CoreIdTokenVerifier::new_confidential_client(
            ClientId::new(CLIENT.into()),
            ClientSecret::new(SECRET.into()),
            IssuerUrl::new(ISSUER.into()).unwrap(),
            CoreJsonWebKeySet::new(vec![key().as_verification_key()]),
        )
    }

    fn token(
        audience: &str,
        nonce: &str,
        key: &impl PrivateSigningKey<VerificationKey = openidconnect::core::CoreJsonWebKey>,
        alg: CoreJwsSigningAlgorithm,
    ) -> CoreIdToken {
        let now = chrono::Utc::now();
        let claims = CoreIdTokenClaims::new(
            IssuerUrl::new(ISSUER.into()).unwrap(),
            vec![Audience::new(audience.into())],
            now + chrono::Duration::minutes(5),
            now,
            StandardClaims::new(SubjectIdentifier::new("alice".into()))
                .set_email(Some(EndUserEmail::new("alice@example.com".into())))
                .set_email_verified(Some(true)),
            EmptyAdditionalClaims {},
        )
        .set_nonce(Some(Nonce::new(nonce.into())));
        CoreIdToken::new(claims, key, alg, None, None).unwrap()
    }

    fn check(
        token: &CoreIdToken,
        nonce: &str,
    ) -> Result<CoreIdTokenClaims, ClaimsVerificationError> {
        verify(verifier(), token, &Nonce::new(nonce.into()))
    }

    #[test]
    fn a_token_for_us_with_the_flows_nonce_passes() {
        let token = token(CLIENT, "n1", &key(), CoreJwsSigningAlgorithm::EdDsa);
        let claims = check(&token, "n1").unwrap();
        assert_eq!(claims.subject().as_str(), "alice");
    }

    #[test]
    fn another_nonce_is_refused() {
        let token = token(CLIENT, "n1", &key(), CoreJwsSigningAlgorithm::EdDsa);
        assert!(matches!(
            check(&token, "n2"),
            Err(ClaimsVerificationError::InvalidNonce(_))
        ));
    }

    #[test]
    fn a_token_for_another_client_is_refused() {
        let token = token(
            "another-client",
            "n1",
            &key(),
            CoreJwsSigningAlgorithm::EdDsa,
        );
        assert!(matches!(
            check(&token, "n1"),
            Err(ClaimsVerificationError::InvalidAudience(_))
        ));
    }

    #[test]
    fn a_token_signed_with_the_client_secret_is_refused() {
        // Anyone who knows the client secret can make one, and the crate's verifier of a
        // confidential client takes it when the provider lists HMAC among its algorithms:
        let hmac = CoreHmacKey::new(SECRET.as_bytes());
        let token = token(CLIENT, "n1", &hmac, CoreJwsSigningAlgorithm::HmacSha256);
        let nonce = Nonce::new("n1".into());
        let as_discovered = || {
            verifier().set_allowed_algs([
                CoreJwsSigningAlgorithm::HmacSha256,
                CoreJwsSigningAlgorithm::EdDsa,
            ])
        };
        assert!(token.claims(&as_discovered(), &nonce).is_ok());
        // ours does not.
        assert!(matches!(
            verify(as_discovered(), &token, &nonce),
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::DisallowedAlg(_)
            ))
        ));
    }
}
