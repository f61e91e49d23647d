//! Every change of accounts and sessions, one function each, each in one transaction:
//! what the HTTP routes and the command line call. A service knows the rules (`auth`) and
//! the storage (`db`), never HTTP: it takes parsed input and returns rows or an
//! [`ApiError`] that says what went wrong in the contract's terms.
//!
//! - [`accounts`]: create an account, change a password, change someone's access, end
//!   every session of a person, promote from the command line.
//! - [`sessions`]: sign in, refresh (rotation), sign out, end one or all other sessions.
//! - [`recovery`]: email verification codes and password reset links.
//! - [`identities`]: signing in with identity providers, and linking them to accounts.
//! - [`mfa`]: the second factor: an authenticator app, recovery codes, and the second step
//!   of a sign-in.
//! - [`passkeys`]: registering passkeys, and signing in with one.

pub mod accounts;
pub mod changes;
pub mod identities;
pub mod keys;
pub mod mfa;
pub mod passkeys;
pub mod recovery;
pub mod sessions;
pub mod user_cache;

use crate::{
    auth::{
        keys::Sealer,
        password::{PasswordError, Passwords},
        throttle::Limit,
        tokens::ServerSecret,
    },
    db::{
        audit,
        changes::{self as announced, Change},
        rate_limits, sessions as session_rows,
        users::UserRow,
        Db, WriteTx,
    },
    error::ApiError,
    mail::Mailer,
};
use sessions::{Issued, Lifetimes};
use std::sync::Arc;
use user_cache::UserCache;

/// What the services work with: storage and the mechanisms, no HTTP.
#[derive(Clone)]
pub struct Core {
    pub db: Db,
    pub passwords: Passwords,
    pub secret: Arc<ServerSecret>,
    /// `RATE_LIMIT_ENABLED`: brute-force limits counted (in the database, shared by every
    /// instance) or not at all.
    pub rate_limits: bool,
    /// Read-through cache of people and their live sessions for the request guards; every
    /// service that changes either evicts the person after its commit.
    pub users: Arc<UserCache>,
    pub mailer: Mailer,
    pub lifetimes: Lifetimes,
    /// Origin of the links in mail (`PUBLIC_URL`).
    pub public_url: String,
    /// The identity providers of `OIDC_PROVIDERS`.
    pub providers: Arc<crate::oidc::Providers>,
    /// Seals people's authenticator secrets (a key of their own, derived from the server
    /// secret).
    pub totp_sealer: Arc<Sealer>,
    /// This site as a WebAuthn relying party (`PUBLIC_URL`'s host and origin), or why it
    /// cannot be one (an IP address): then passkeys are off.
    pub webauthn: Result<Arc<webauthn_rs::Webauthn>, String>,
}

impl Core {
    /// The services' parts, as the settings describe them. `secret` is the server secret
    /// (`AUTH_SECRET_FILE`), read by the caller.
    pub fn new(
        settings: &crate::config::Settings,
        db: Db,
        secret: [u8; 32],
    ) -> Result<Core, crate::StartupError> {
        Ok(Core {
            db,
            passwords: Passwords::for_this_machine()?,
            secret: Arc::new(ServerSecret::new(secret)),
            totp_sealer: Arc::new(Sealer::labelled(
                &secret,
                b"jwt-auth: the key sealing authenticator secrets",
            )),
            rate_limits: settings.auth.rate_limit_enabled,
            users: Arc::new(UserCache::new()),
            mailer: Mailer::from_settings(settings)?,
            lifetimes: settings.lifetimes(),
            public_url: settings.http.public_url.clone(),
            webauthn: crate::auth::passkeys::relying_party(&settings.http.public_url)
                .map(Arc::new)
                .inspect_err(|why| tracing::info!(%why, "passkeys are off")),
            providers: Arc::new(
                crate::oidc::Providers::new(&settings.oidc, &settings.http.public_url)
                    .map_err(crate::StartupError::Oidc)?,
            ),
        })
    }
}

impl Core {
    /// Commits `tx`, a change of `user_id`'s sessions, status, role or password, announced
    /// to every other instance on the database in the same transaction; this instance
    /// forgets its copy of the person at once.
    pub async fn commit_change(&self, mut tx: WriteTx, user_id: &str) -> Result<(), ApiError> {
        let change = Change::Person(user_id.to_string());
        announced::announce(&mut *tx, self.db.backend(), &change).await?;
        tx.commit().await?;
        self.users.evict(user_id);
        Ok(())
    }
}

/// A person who just signed in (register, login) or refreshed, and their refresh token.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub user: UserRow,
    pub issued: Issued,
}

/// Where a request came from: kept with a new session and in the audit log.
#[derive(Clone, Copy, Debug, Default)]
pub struct Client<'a> {
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// Which of a person's sessions end.
#[derive(Clone, Copy, Debug)]
pub enum Ending<'a> {
    All,
    AllBut(&'a str),
}

/// Ends sessions of `user_id` inside the caller's transaction: their refresh tokens stop
/// at once, and so do their access tokens (the request guards honour only live sessions;
/// the caller evicts the person from the cache after commit). Returns how many ended.
async fn end_sessions_in(
    tx: &mut WriteTx,
    user_id: &str,
    which: Ending<'_>,
    reason: &str,
    now: i64,
) -> Result<u64, sqlx::Error> {
    match which {
        Ending::All => session_rows::revoke_all_of_user(&mut **tx, user_id, now, reason).await,
        Ending::AllBut(keep) => {
            session_rows::revoke_others(&mut **tx, user_id, keep, now, reason).await
        }
    }
}

/// Counts an attempt against `limits` before any password work: refused (429) when one of
/// them is spent.
async fn count_attempt(core: &Core, limits: &[Limit], now: i64) -> Result<(), ApiError> {
    if !core.rate_limits {
        return Ok(());
    }
    rate_limits::attempt(&core.db, limits, now)
        .await?
        .map_err(|retry_after| ApiError::RateLimited { retry_after })
}

/// Gives an attempt counted by [`count_attempt`] back: it was no guess. A failure only
/// leaves the attempt counted, so it is logged, not answered.
async fn give_back(core: &Core, limits: &[Limit], now: i64) {
    if !core.rate_limits {
        return;
    }
    if let Err(e) = rate_limits::give_back(&core.db, limits, now).await {
        tracing::warn!(error = %e, "an attempt could not be given back");
    }
}

/// Forgets the count of `limit`'s key (see `rate_limits::reset`); failures as in
/// [`give_back`].
async fn forgive(core: &Core, limit: &Limit) {
    if !core.rate_limits {
        return;
    }
    if let Err(e) = rate_limits::reset(&core.db, &limit.key).await {
        tracing::warn!(error = %e, "a count could not be reset");
    }
}

/// The outcome of password work counted by [`count_attempt`]: when the hashing pool was too
/// busy to judge it (503), the attempt was no guess and is given back.
async fn judged<T>(
    core: &Core,
    limits: &[Limit],
    now: i64,
    work: Result<T, PasswordError>,
) -> Result<T, ApiError> {
    if let Err(PasswordError::Overloaded) = &work {
        give_back(core, limits, now).await;
    }
    work.map_err(ApiError::from)
}

/// One audit entry in the caller's transaction.
async fn record(
    tx: &mut WriteTx,
    action: audit::Action,
    actor: Option<&str>,
    subject: Option<&str>,
    client: Client<'_>,
    detail: Option<&str>,
    now: i64,
) -> Result<(), ApiError> {
    audit::record(
        &mut **tx,
        audit::Event {
            action,
            actor_id: actor,
            subject_id: subject,
            ip: client.ip,
            detail,
            now,
        },
    )
    .await
    .map_err(ApiError::from)
}
