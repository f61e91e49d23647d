//! The second factor: an authenticator app (TOTP) with its recovery codes, and the second
//! step of a sign-in.
//!
//! A sign-in of a person whose second factor is on stops after the first factor (a
//! correct password, or an identity provider's callback): instead of a session it gets a
//! single-use, five-minute `mfa_token` ([`challenge_in`]). [`verify`] takes that token
//! with a code and completes the sign-in exactly as a login does.
//!
//! Codes are limited twice: each `mfa_token` ends after five wrong ones, and each account
//! has a budget across all tokens and addresses (`throttle::MFA_ACCOUNT`), counted before
//! a code is judged, like passwords. Every code opens something once: an authenticator
//! code only when its 30-second step is later than the last one accepted, a recovery code
//! only while unused, each decided by one conditional statement.

use super::{count_attempt, give_back, record, sessions, Client, Core, SignedIn};
use crate::{
    auth::{
        throttle::{self, Limit},
        tokens,
        totp::{self, AnyCode, Enrolment},
    },
    db::{
        audit::Action,
        mfa::{self, NewChallenge, MAX_FAILURES},
        passkeys, users, WriteTx,
    },
    error::ApiError,
};

/// How long an `mfa_token` lasts.
pub const MFA_TOKEN_SECS: i64 = 5 * 60;

/// The per-account budget of codes.
fn code_limits(user_id: &str) -> [Limit; 1] {
    [Limit::new(format!("mfa:{user_id}"), throttle::MFA_ACCOUNT)]
}

/// The stored form of a recovery code (already normalised): a keyed digest, since the code
/// has only 50 bits.
fn recovery_digest(core: &Core, user_id: &str, code: &str) -> String {
    core.secret.digest("recovery-code", &[user_id, code])
}

/// The site's name in authenticator apps: `PUBLIC_URL`'s host.
fn issuer(core: &Core) -> String {
    reqwest::Url::parse(&core.public_url)
        .ok()
        .and_then(|url| url.host_str().map(str::to_string))
        .unwrap_or_else(|| "jwt-auth".into())
}

fn open_secret(core: &Core, user_id: &str, sealed: &str) -> Result<Vec<u8>, ApiError> {
    core.totp_sealer.open_bytes(user_id, sealed).ok_or_else(|| {
        ApiError::internal("an authenticator secret does not open with this server secret")
    })
}

/// New recovery codes to show, and their digests to store.
fn fresh_recovery_codes(core: &Core, user_id: &str) -> (Vec<String>, Vec<String>) {
    let codes = totp::new_recovery_codes(&mut rand::rng());
    let digests = codes
        .iter()
        .filter_map(|code| totp::normalise_recovery_code(code))
        .map(|code| recovery_digest(core, user_id, &code))
        .collect();
    (codes, digests)
}

/// Whether the person's second factor is on, and how many recovery codes they have left.
pub async fn status(core: &Core, user_id: &str) -> Result<(bool, i64), ApiError> {
    let pool = core.db.pool();
    let enabled = mfa::totp_enabled(pool, user_id).await?;
    let left = mfa::recovery_codes_left(pool, user_id).await?;
    Ok((enabled, left))
}

/// A pending authenticator secret for the person, replacing any earlier pending one; the
/// second factor stays off until [`confirm`].
pub async fn setup(core: &Core, user_id: &str, now: i64) -> Result<Enrolment, ApiError> {
    let user = users::find_by_id(core.db.pool(), user_id)
        .await?
        .ok_or(ApiError::TokenInvalid)?;
    let (secret, sealed) = {
        let mut rng = rand::rng();
        let secret = totp::new_secret(&mut rng);
        let sealed = core.totp_sealer.seal_bytes(user_id, &secret, &mut rng);
        (secret, sealed)
    };
    let enrolment =
        totp::enrolment(&secret, &issuer(core), &user.email).map_err(ApiError::internal)?;
    let mut tx = core.db.begin_write().await?;
    if !mfa::set_pending(&mut *tx, user_id, &sealed, now).await? {
        return Err(ApiError::MfaAlreadyEnabled);
    }
    tx.commit().await?;
    Ok(enrolment)
}

/// Confirms the pending secret with a first code: the second factor is on, and these are
/// its ten recovery codes (shown once; only their digests are kept).
pub async fn confirm(
    core: &Core,
    user_id: &str,
    code: &str,
    client: Client<'_>,
    now: i64,
) -> Result<Vec<String>, ApiError> {
    let pending = mfa::find_totp(core.db.pool(), user_id)
        .await?
        .filter(|row| row.enabled_at.is_none())
        .ok_or(ApiError::MfaNotPending)?;
    let secret = open_secret(core, user_id, &pending.secret_sealed)?;
    let limits = code_limits(user_id);
    count_attempt(core, &limits, now).await?;
    let step = totp::matching_step(&secret, code, now).ok_or(ApiError::WrongCode)?;
    give_back(core, &limits, now).await;
    let (codes, digests) = fresh_recovery_codes(core, user_id);
    let mut tx = core.db.begin_write().await?;
    // Only the secret the code was checked against: a setup meanwhile replaced it.
    if !mfa::enable(&mut *tx, user_id, &pending.secret_sealed, step, now).await? {
        return Err(ApiError::MfaNotPending);
    }
    mfa::replace_recovery_codes(&mut tx, user_id, &digests, now).await?;
    record(
        &mut tx,
        Action::MfaEnabled,
        Some(user_id),
        Some(user_id),
        client,
        Some("authenticator app"),
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user_id, "second factor turned on");
    Ok(codes)
}

/// Which kind of code opened something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Used {
    Authenticator,
    RecoveryCode,
}

/// Uses up `code` (a current authenticator code or an unused recovery code) of `user_id`,
/// whose second factor is on, inside the caller's transaction. `None`: wrong, already used,
/// or no second factor.
async fn use_code(
    core: &Core,
    tx: &mut WriteTx,
    user_id: &str,
    code: &AnyCode,
    now: i64,
) -> Result<Option<Used>, ApiError> {
    match code {
        AnyCode::Totp(digits) => {
            let Some(row) = mfa::find_totp(&mut **tx, user_id)
                .await?
                .filter(|row| row.enabled_at.is_some())
            else {
                return Ok(None);
            };
            let secret = open_secret(core, user_id, &row.secret_sealed)?;
            match totp::matching_step(&secret, digits, now) {
                Some(step) if mfa::claim_step(&mut **tx, user_id, step).await? => {
                    Ok(Some(Used::Authenticator))
                }
                _ => Ok(None),
            }
        }
        AnyCode::Recovery(normalised) => {
            let digest = recovery_digest(core, user_id, normalised);
            Ok(mfa::use_recovery_code(&mut **tx, user_id, &digest, now)
                .await?
                .then_some(Used::RecoveryCode))
        }
    }
}

/// A code for a change of the second factor itself (turning it off, new recovery codes),
/// counted against the account's budget before it is judged (and before the write turn is
/// taken: counting writes too).
async fn counted(core: &Core, user_id: &str, code: &str, now: i64) -> Result<AnyCode, ApiError> {
    count_attempt(core, &code_limits(user_id), now).await?;
    totp::classify(code).ok_or(ApiError::WrongCode)
}

/// Turns the person's second factor off with a current code or a recovery code: the secret
/// and the recovery codes go.
pub async fn disable(
    core: &Core,
    user_id: &str,
    code: &str,
    client: Client<'_>,
    now: i64,
) -> Result<(), ApiError> {
    let code = counted(core, user_id, code, now).await?;
    let mut tx = core.db.begin_write().await?;
    let used = use_code(core, &mut tx, user_id, &code, now)
        .await?
        .ok_or(ApiError::WrongCode)?;
    mfa::remove(&mut tx, user_id).await?;
    let detail = match used {
        Used::Authenticator => "with an authenticator code",
        Used::RecoveryCode => "with a recovery code",
    };
    record_recovery_code_use(&mut tx, used, user_id, client, now).await?;
    record(
        &mut tx,
        Action::MfaDisabled,
        Some(user_id),
        Some(user_id),
        client,
        Some(detail),
        now,
    )
    .await?;
    tx.commit().await?;
    give_back(core, &code_limits(user_id), now).await;
    tracing::info!(user_id, "second factor turned off");
    Ok(())
}

/// A new set of recovery codes (the old set dies), with a current code or a recovery code.
pub async fn regenerate_recovery_codes(
    core: &Core,
    user_id: &str,
    code: &str,
    client: Client<'_>,
    now: i64,
) -> Result<Vec<String>, ApiError> {
    let code = counted(core, user_id, code, now).await?;
    let (codes, digests) = fresh_recovery_codes(core, user_id);
    let mut tx = core.db.begin_write().await?;
    let used = use_code(core, &mut tx, user_id, &code, now)
        .await?
        .ok_or(ApiError::WrongCode)?;
    record_recovery_code_use(&mut tx, used, user_id, client, now).await?;
    mfa::replace_recovery_codes(&mut tx, user_id, &digests, now).await?;
    record(
        &mut tx,
        Action::RecoveryCodesRegenerated,
        Some(user_id),
        Some(user_id),
        client,
        None,
        now,
    )
    .await?;
    tx.commit().await?;
    give_back(core, &code_limits(user_id), now).await;
    Ok(codes)
}

/// Every use of a recovery code is in the audit log, whatever it opened.
async fn record_recovery_code_use(
    tx: &mut WriteTx,
    used: Used,
    user_id: &str,
    client: Client<'_>,
    now: i64,
) -> Result<(), ApiError> {
    if used != Used::RecoveryCode {
        return Ok(());
    }
    record(
        tx,
        Action::RecoveryCodeUsed,
        Some(user_id),
        Some(user_id),
        client,
        None,
        now,
    )
    .await
}

/// Inside the caller's transaction: every second factor and passkey of `user_id` goes.
/// For an account whose address was never proven, when its owner proves it (a provider's
/// verified email, a reset link): whoever registered it first must keep no way in, and
/// the owner must not be asked for their code.
pub(super) async fn remove_everything_in(
    tx: &mut WriteTx,
    user_id: &str,
) -> Result<(), sqlx::Error> {
    mfa::remove(tx, user_id).await?;
    passkeys::delete_all_of_user(tx, user_id).await?;
    Ok(())
}

/// The ways a second step can be taken, as `mfa_required` lists them: a code, a recovery
/// code, or (for a person who has one) starting over with a passkey, which is both
/// factors.
const METHODS: &[&str] = &["totp", "recovery_code"];
const WITH_PASSKEY: &[&str] = &["totp", "recovery_code", "passkey"];

/// Inside a sign-in's transaction, after its first factor: when `user_id`'s second factor
/// is on, a challenge for `mfa_token` (from [`tokens::random_token`], drawn by the caller)
/// and the `mfa_required` answer to give instead of a session. `method` is how the sign-in
/// began (the session's method once it completes).
pub(super) async fn challenge_in(
    tx: &mut WriteTx,
    user_id: &str,
    method: &str,
    mfa_token: String,
    now: i64,
) -> Result<Option<ApiError>, sqlx::Error> {
    if !mfa::totp_enabled(&mut **tx, user_id).await? {
        return Ok(None);
    }
    let methods = if passkeys::has_any(&mut **tx, user_id).await? {
        WITH_PASSKEY
    } else {
        METHODS
    };
    mfa::create_challenge(
        &mut **tx,
        NewChallenge {
            token_hash: &tokens::hash(&mfa_token),
            user_id,
            method,
            now,
            expires_at: now + MFA_TOKEN_SECS,
        },
    )
    .await?;
    Ok(Some(ApiError::MfaRequired {
        mfa_token,
        methods: methods.to_vec(),
    }))
}

/// The second step's answer: an authenticator code or a recovery code.
#[derive(Clone, Debug)]
pub enum Answer {
    Code(String),
    RecoveryCode(String),
}

/// Completes a sign-in stopped at its second factor: the `mfa_token` is used up, and the
/// person gets a session as a login gives. Counted in `auth_logins_total` like a login.
pub async fn verify(
    core: &Core,
    mfa_token: &str,
    answer: Answer,
    client: Client<'_>,
    now: i64,
) -> Result<SignedIn, ApiError> {
    let result = second_step(core, mfa_token, answer, client, now).await;
    let outcome = match &result {
        Ok(_) => Some("ok"),
        Err(ApiError::RateLimited { .. } | ApiError::MfaTokenEnded) => Some("rate_limited"),
        Err(ApiError::AccountDisabled) => Some("account_disabled"),
        Err(_) => None,
    };
    if let Some(outcome) = outcome {
        metrics::counter!("auth_logins_total", "outcome" => outcome).increment(1);
    }
    result
}

async fn second_step(
    core: &Core,
    mfa_token: &str,
    answer: Answer,
    client: Client<'_>,
    now: i64,
) -> Result<SignedIn, ApiError> {
    if !tokens::looks_valid(mfa_token) {
        return Err(ApiError::MfaTokenInvalid);
    }
    let token_hash = tokens::hash(mfa_token);
    let challenge = mfa::find_challenge(core.db.pool(), &token_hash)
        .await?
        .filter(|challenge| challenge.open(now))
        .ok_or(ApiError::MfaTokenInvalid)?;
    let user_id = challenge.user_id.as_str();
    let limits = code_limits(user_id);
    count_attempt(core, &limits, now).await?;
    // A code that cannot be one is judged wrong like any other, so it counts.
    let code = match &answer {
        Answer::Code(code) => totp::classify(code).filter(|c| matches!(c, AnyCode::Totp(_))),
        Answer::RecoveryCode(code) => totp::normalise_recovery_code(code).map(AnyCode::Recovery),
    };
    let first_token = tokens::random_token(&mut rand::rng());
    let mut tx = core.db.begin_write().await?;
    // The person's row held first, before the rows of their factor and challenge: a
    // disabling under way (whose revocation cannot see the session about to open) is waited
    // for, and the order is that of the changes that hold it too (a password reset or
    // change ends challenges after holding it), so the two cannot deadlock.
    users::hold(&mut *tx, user_id).await?;
    let used = match &code {
        Some(code) => use_code(core, &mut tx, user_id, code, now).await?,
        None => None,
    };
    let Some(used) = used else {
        let failures = mfa::fail_challenge(&mut *tx, &token_hash, now).await?;
        record(
            &mut tx,
            Action::MfaFailed,
            None,
            Some(user_id),
            client,
            Some("wrong second-factor code"),
            now,
        )
        .await?;
        tx.commit().await?;
        return Err(match failures {
            None => ApiError::MfaTokenInvalid,
            // The fifth wrong code ends the token: the person starts over.
            Some(failures) if failures >= MAX_FAILURES => ApiError::MfaTokenEnded,
            Some(_) => ApiError::WrongCode,
        });
    };
    // Once only: a racing request with the same token, or an admin turning the factor
    // off meanwhile, leaves nothing to use (and this transaction's changes roll back).
    if !mfa::use_challenge(&mut *tx, &token_hash, now).await? {
        return Err(ApiError::MfaTokenInvalid);
    }
    let user = users::find_by_id(&mut *tx, user_id)
        .await?
        .ok_or(ApiError::MfaTokenInvalid)?;
    if !user.active {
        return Err(ApiError::AccountDisabled);
    }
    record_recovery_code_use(&mut tx, used, user_id, client, now).await?;
    // Audited as the sign-in it completes: a password's, or a provider's.
    let (action, detail) = match (challenge.method.as_str(), used) {
        (sessions::PASSWORD, Used::Authenticator) => {
            (Action::LoginSucceeded, "second factor: authenticator app")
        }
        (sessions::PASSWORD, Used::RecoveryCode) => {
            (Action::LoginSucceeded, "second factor: recovery code")
        }
        (provider, _) => (Action::OidcLogin, provider),
    };
    record(
        &mut tx,
        action,
        Some(user_id),
        Some(user_id),
        client,
        Some(detail),
        now,
    )
    .await?;
    let issued = sessions::start_in(
        &mut tx,
        user_id,
        now,
        core.lifetimes,
        client,
        &challenge.method,
        first_token,
    )
    .await?;
    tx.commit().await?;
    give_back(core, &limits, now).await;
    tracing::info!(user_id, "signed in with a second factor");
    Ok(SignedIn { user, issued })
}

/// An admin turns a person's second factor off (they lost their authenticator and their
/// recovery codes): the secret, the recovery codes and any sign-in waiting for a code go.
pub async fn reset_by_admin(
    core: &Core,
    admin_id: &str,
    user_id: &str,
    client: Client<'_>,
    now: i64,
) -> Result<(), ApiError> {
    let mut tx = core.db.begin_write().await?;
    users::find_by_id(&mut *tx, user_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let was_on = mfa::remove(&mut tx, user_id).await?;
    record(
        &mut tx,
        Action::MfaResetByAdmin,
        Some(admin_id),
        Some(user_id),
        client,
        Some(if was_on {
            "second factor turned off"
        } else {
            "no second factor was on"
        }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
