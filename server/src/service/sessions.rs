//! Sessions (refresh families): start one at sign-in, rotate it on refresh, end it.
//!
//! Rotation carries out the decisions of [`crate::auth::refresh::decide`]. The presented
//! token is looked up first, outside any write transaction: an unknown, expired or revoked
//! token never waits for (or holds up) a writer.

use super::{
    count_attempt, end_sessions_in, forgive, give_back, judged, record, Client, Core, Ending,
    SignedIn,
};
use crate::{
    auth::{
        refresh::{decide, Decision, FamilyRecord, Policy, ReuseCause, TokenRecord},
        throttle::{self, Limit},
        tokens::{self, ServerSecret},
    },
    db::{
        audit::Action,
        changes::{self, Change},
        sessions, users, Db, WriteTx,
    },
    error::ApiError,
};
use secrecy::SecretString;

/// A refresh token handed to the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    pub refresh_token: String,
    /// End of the token's idle lifetime, capped by its family's absolute end.
    pub expires_at: i64,
    pub family_id: String,
    pub user_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshFailure {
    Invalid,
    /// The family was revoked because an admin disabled the person (who may be enabled
    /// again since: the caller checks).
    Disabled {
        user_id: String,
    },
    Expired,
    Reused(ReuseCause),
}

#[derive(Clone, Copy, Debug)]
pub struct Lifetimes {
    pub policy: Policy,
    /// Absolute lifetime of a family, seconds.
    pub session_max: i64,
}

/// How long ended families are kept before pruning: a late token of one is still answered
/// `refresh_expired` (or as a replay), not as an unknown token.
pub const KEEP_ENDED_SECS: i64 = 7 * 24 * 3600;

/// How a session began, as `GET /api/sessions` shows it.
pub const PASSWORD: &str = "password";

/// Starts a password session (a family) for `user_id` whose first token is `first_token`
/// (from [`tokens::random_token`]; drawn by the caller so no RNG is held across an await),
/// in its own transaction.
pub async fn start(
    db: &Db,
    user_id: &str,
    now: i64,
    lifetimes: Lifetimes,
    client: Client<'_>,
    first_token: String,
) -> Result<Issued, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let issued = start_in(
        &mut tx,
        user_id,
        now,
        lifetimes,
        client,
        PASSWORD,
        first_token,
    )
    .await?;
    tx.commit().await?;
    Ok(issued)
}

/// [`start`] inside the caller's transaction (a sign-in that writes more than the session),
/// begun by `method` ([`PASSWORD`], or the id of an identity provider).
pub async fn start_in(
    tx: &mut WriteTx,
    user_id: &str,
    now: i64,
    lifetimes: Lifetimes,
    client: Client<'_>,
    method: &str,
    first_token: String,
) -> Result<Issued, sqlx::Error> {
    let family_id = uuid::Uuid::new_v4().to_string();
    let token = first_token;
    let expires_at = now + lifetimes.session_max;
    let token_expires_at = (now + lifetimes.policy.refresh_ttl).min(expires_at);
    sessions::create(
        tx,
        sessions::NewFamily {
            id: &family_id,
            user_id,
            token_hash: &tokens::hash(&token),
            now,
            token_expires_at,
            expires_at,
            user_agent: client.user_agent,
            ip: client.ip,
            method,
        },
    )
    .await?;
    Ok(Issued {
        refresh_token: token,
        expires_at: token_expires_at,
        family_id,
        user_id: user_id.to_string(),
    })
}

/// Presents a refresh token: rotates it, converges on the bounded race, or refuses it
/// (revoking the family on a replay). The storage-level step of [`refresh`]; counted in
/// `auth_refresh_total`.
pub async fn rotate(
    db: &Db,
    secret: &ServerSecret,
    presented: &str,
    now: i64,
    policy: Policy,
) -> Result<Result<Issued, RefreshFailure>, sqlx::Error> {
    let answer = rotate_or_refuse(db, secret, presented, now, policy).await?;
    metrics::counter!("auth_refresh_total", "outcome" => refresh_outcome(&answer)).increment(1);
    Ok(answer.map(|(issued, _)| issued))
}

/// How a refresh token that was not refused was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Renewal {
    Rotated,
    /// The bounded race: the newest child again, within the grace window.
    Converged,
}

/// The label of `auth_refresh_total` (`prometheus::REFRESH_OUTCOMES`).
fn refresh_outcome(answer: &Result<(Issued, Renewal), RefreshFailure>) -> &'static str {
    match answer {
        Ok((_, Renewal::Rotated)) => "rotated",
        Ok((_, Renewal::Converged)) => "converged",
        Err(RefreshFailure::Reused(_)) => "reused",
        Err(RefreshFailure::Expired) => "expired",
        // Revoked by an admin disabling the person: a token of an ended session.
        Err(RefreshFailure::Invalid | RefreshFailure::Disabled { .. }) => "invalid",
    }
}

async fn rotate_or_refuse(
    db: &Db,
    secret: &ServerSecret,
    presented: &str,
    now: i64,
    policy: Policy,
) -> Result<Result<(Issued, Renewal), RefreshFailure>, sqlx::Error> {
    if !tokens::looks_valid(presented) {
        return Ok(Err(RefreshFailure::Invalid));
    }
    let hash = tokens::hash(presented);
    // A second or third round only when a concurrent request changed the family between
    // our read and our write (it rotated, or revoked it): decide again on what it left.
    for _ in 0..3 {
        let Some(found) = sessions::find_presented(db.pool(), &hash).await? else {
            return Ok(Err(RefreshFailure::Invalid));
        };
        let family = &found.family;
        match decide(Some(records(&found)), now, policy) {
            Decision::Rotate { child, expires_at } => {
                let token = tokens::child_token(secret, &family.id, child, presented);
                let rotated = sessions::write_rotation(
                    db,
                    sessions::Rotation {
                        family_id: &family.id,
                        parent_generation: found.token.generation,
                        parent_hash: &hash,
                        child_hash: &tokens::hash(&token),
                        child_expires_at: expires_at,
                        now,
                    },
                )
                .await?;
                if !rotated {
                    continue;
                }
                return Ok(Ok((issued(token, expires_at, family), Renewal::Rotated)));
            }
            Decision::Converge { newest } => {
                let token = tokens::child_token(secret, &family.id, newest, presented);
                return Ok(
                    match sessions::token_of_generation(db.pool(), &family.id, newest).await? {
                        Some((stored, expires_at)) if stored == tokens::hash(&token) => {
                            Ok((issued(token, expires_at, family), Renewal::Converged))
                        }
                        // Only if the server secret changed since the rotation.
                        _ => Err(RefreshFailure::Invalid),
                    },
                );
            }
            Decision::Reuse(cause) => {
                let mut tx = db.begin_write().await?;
                sessions::revoke(&mut *tx, &family.id, now, cause.as_str()).await?;
                crate::db::audit::record(
                    &mut *tx,
                    crate::db::audit::Event {
                        action: Action::RefreshReused,
                        actor_id: None,
                        subject_id: Some(&family.user_id),
                        ip: None,
                        detail: Some(cause.as_str()),
                        now,
                    },
                )
                .await?;
                // Every instance stops the family's access tokens (see `commit_change`).
                let change = Change::Person(family.user_id.clone());
                changes::announce(&mut *tx, db.backend(), &change).await?;
                tx.commit().await?;
                return Ok(Err(RefreshFailure::Reused(cause)));
            }
            // Say why when an admin ended the login by disabling the person.
            Decision::Invalid
                if family.revoke_reason.as_deref() == Some(sessions::DISABLED_BY_ADMIN) =>
            {
                return Ok(Err(RefreshFailure::Disabled {
                    user_id: family.user_id.clone(),
                }));
            }
            Decision::Invalid => return Ok(Err(RefreshFailure::Invalid)),
            Decision::Expired => return Ok(Err(RefreshFailure::Expired)),
        }
    }
    Ok(Err(RefreshFailure::Invalid))
}

/// The stored token and family as the rotation rules see them.
pub fn records(found: &sessions::Presented) -> (TokenRecord, FamilyRecord) {
    (
        TokenRecord {
            generation: found.token.generation,
            expires_at: found.token.expires_at,
            used_at: found.token.used_at,
        },
        FamilyRecord {
            newest_generation: found.family.generation,
            expires_at: found.family.expires_at,
            revoked: found.family.revoked_at.is_some(),
        },
    )
}

fn issued(token: String, expires_at: i64, family: &sessions::FamilyRow) -> Issued {
    Issued {
        refresh_token: token,
        expires_at,
        family_id: family.id.clone(),
        user_id: family.user_id.clone(),
    }
}

/// What a person types to sign in (the email already validated).
pub struct Credentials {
    pub email: String,
    pub password: SecretString,
}

/// Signs a person in with email and password: a new session. Counted in
/// `auth_logins_total`.
pub async fn login(
    core: &Core,
    credentials: Credentials,
    client: Client<'_>,
    now: i64,
) -> Result<SignedIn, ApiError> {
    let answer = check_password_and_start(core, credentials, client, now).await;
    if let Some(outcome) = login_outcome(answer.as_ref().err()) {
        metrics::counter!("auth_logins_total", "outcome" => outcome).increment(1);
    }
    answer
}

/// The label of `auth_logins_total` (`prometheus::LOGIN_OUTCOMES`) for a login that
/// failed with `error` (`None`: signed in); none for the server's own failures.
fn login_outcome(error: Option<&ApiError>) -> Option<&'static str> {
    match error {
        None => Some("ok"),
        Some(ApiError::InvalidCredentials) => Some("invalid_credentials"),
        Some(ApiError::RateLimited { .. }) => Some("rate_limited"),
        Some(ApiError::AccountDisabled) => Some("account_disabled"),
        Some(ApiError::Overloaded { .. }) => Some("overloaded"),
        Some(_) => None,
    }
}

/// The attempt is counted against the brute-force limits before any password is hashed,
/// in one atomic step, so parallel attempts cannot exceed them; a success gives it back.
async fn check_password_and_start(
    core: &Core,
    credentials: Credentials,
    client: Client<'_>,
    now: i64,
) -> Result<SignedIn, ApiError> {
    let account = users::email_key(&credentials.email);
    let ip = throttle::address_key(client.ip.unwrap_or("unknown"));
    let limits = [
        Limit::new(format!("login:{account}:{ip}"), throttle::ACCOUNT_AND_IP),
        Limit::new(format!("login-ip:{ip}"), throttle::IP_LOGIN),
        Limit::new(format!("login-account:{account}"), throttle::ACCOUNT),
    ];
    count_attempt(core, &limits, now).await?;

    let user = users::find_by_email(core.db.pool(), &credentials.email).await?;
    let verified = core
        .passwords
        .verify(
            &credentials.password,
            // An account without a password is checked against the dummy hash, like an
            // unknown one: the same time, and never a match.
            user.as_ref()
                .map(|u| u.password_hash.as_str())
                .filter(|hash| *hash != users::NO_PASSWORD),
        )
        .await;
    let verified = judged(core, &limits, now, verified).await?;
    let user = match user {
        Some(user) if verified.valid => user,
        other => {
            tracing::info!("login failed");
            let unknown = format!("unknown account {account}");
            let detail = if other.is_some() {
                "wrong password"
            } else {
                &unknown
            };
            let mut tx = core.db.begin_write().await?;
            let subject = other.as_ref().map(|u| u.id.as_str());
            record(
                &mut tx,
                Action::LoginFailed,
                None,
                subject,
                client,
                Some(detail),
                now,
            )
            .await?;
            tx.commit().await?;
            return Err(ApiError::InvalidCredentials);
        }
    };
    // Not a guess: the address's and the account's counts get it back, and this address's
    // earlier typos for this account are forgiven.
    give_back(core, &limits[1..], now).await;
    forgive(core, &limits[0]).await;
    if !user.active {
        return Err(ApiError::AccountDisabled);
    }
    start_checked(
        core,
        user,
        &credentials.password,
        verified.needs_rehash,
        client,
        now,
    )
    .await
}

/// The second half of a password sign-in: `password` was found right for `checked`, the
/// person as read before the check (which ran outside any transaction, since hashing is
/// slow). Opens the session, or the second step when a second factor is on
/// (`Err(mfa_required)`), only while the stored hash is still the one checked: a reset or
/// change that landed meanwhile has ended every session, and the old password must open
/// none. A hash changed by another sign-in's re-hash of the same password is checked once
/// more, so that sign-in does not fail this one. `needs_rehash`: stored with older
/// parameters, re-hashed now that the password is known.
pub async fn start_checked(
    core: &Core,
    checked: users::UserRow,
    password: &SecretString,
    needs_rehash: bool,
    client: Client<'_>,
    now: i64,
) -> Result<SignedIn, ApiError> {
    let mut user = checked;
    let mut needs_rehash = needs_rehash;
    for check in 0..2 {
        if check > 0 {
            // The stored hash changed since the check: check against what is stored now.
            let Some(now_stored) = users::find_by_id(core.db.pool(), &user.id).await? else {
                return Err(ApiError::InvalidCredentials);
            };
            let verified = core
                .passwords
                .verify(
                    password,
                    Some(now_stored.password_hash.as_str()).filter(|h| *h != users::NO_PASSWORD),
                )
                .await?;
            if !verified.valid {
                return Err(password_changed_meanwhile(core, &user.id, client, now).await?);
            }
            if !now_stored.active {
                return Err(ApiError::AccountDisabled);
            }
            (user, needs_rehash) = (now_stored, verified.needs_rehash);
        }
        if let Some(answer) =
            start_if_unchanged(core, &user, password, needs_rehash, client, now).await?
        {
            return answer.map(|issued| {
                tracing::info!(user_id = %user.id, "logged in");
                SignedIn { user, issued }
            });
        }
    }
    // Changed again since the second check.
    Err(password_changed_meanwhile(core, &user.id, client, now).await?)
}

/// A sign-in refused because the password changed while it was checked: audited as a
/// failed login (the old password tried after a reset is what an owner reading the log
/// wants to see), though not counted against the limits, which the check found right.
async fn password_changed_meanwhile(
    core: &Core,
    user_id: &str,
    client: Client<'_>,
    now: i64,
) -> Result<ApiError, ApiError> {
    let mut tx = core.db.begin_write().await?;
    record(
        &mut tx,
        Action::LoginFailed,
        None,
        Some(user_id),
        client,
        Some("password changed during the sign-in"),
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!("login failed");
    Ok(ApiError::InvalidCredentials)
}

/// [`start_checked`]'s transaction: `None` (nothing written) when the person's stored hash is
/// no longer `user.password_hash`, or they were disabled.
async fn start_if_unchanged(
    core: &Core,
    user: &users::UserRow,
    password: &SecretString,
    needs_rehash: bool,
    client: Client<'_>,
    now: i64,
) -> Result<Option<Result<Issued, ApiError>>, ApiError> {
    // Re-hashed before the write turn is taken, which hashing would hold up. A busy pool
    // only postpones it to a later login.
    let rehashed = if needs_rehash {
        match core.passwords.hash(password).await {
            Ok(fresh) => Some(fresh),
            Err(e) => {
                tracing::warn!(user_id = %user.id, error = %e, "re-hash postponed");
                None
            }
        }
    } else {
        None
    };
    let (first_token, mfa_token) = {
        let mut rng = rand::rng();
        (
            tokens::random_token(&mut rng),
            tokens::random_token(&mut rng),
        )
    };
    let mut tx = core.db.begin_write().await?;
    // Holds the person's row, so a reset, change or removal of the password (or a disabling)
    // waits for this transaction or wins over it.
    if !users::hold_if_password_is(&mut *tx, &user.id, &user.password_hash).await? {
        return Ok(None);
    }
    if let Some(fresh) = &rehashed {
        users::replace_password_hash(&mut *tx, &user.id, &user.password_hash, fresh, now).await?;
    }
    // A second factor on: no session yet, but a token for the second step.
    if let Some(required) =
        super::mfa::challenge_in(&mut tx, &user.id, PASSWORD, mfa_token, now).await?
    {
        tx.commit().await?;
        if rehashed.is_some() {
            core.users.evict(&user.id);
        }
        return Ok(Some(Err(required)));
    }
    record(
        &mut tx,
        Action::LoginSucceeded,
        Some(&user.id),
        Some(&user.id),
        client,
        None,
        now,
    )
    .await?;
    let issued = start_in(
        &mut tx,
        &user.id,
        now,
        core.lifetimes,
        client,
        PASSWORD,
        first_token,
    )
    .await?;
    tx.commit().await?;
    if rehashed.is_some() {
        // Only the stored hash changed, which no guard reads: no announcement.
        core.users.evict(&user.id);
        tracing::info!(user_id = %user.id, "password re-hashed with current parameters");
    }
    Ok(Some(Ok(issued)))
}

/// Rotates the presented refresh token and answers the person it belongs to.
pub async fn refresh(core: &Core, presented: &str, now: i64) -> Result<SignedIn, ApiError> {
    let failure = match rotate(
        &core.db,
        &core.secret,
        presented,
        now,
        core.lifetimes.policy,
    )
    .await?
    {
        Ok(issued) => {
            let user = users::find_by_id(core.db.pool(), &issued.user_id)
                .await?
                .ok_or(ApiError::RefreshInvalid)?;
            if !user.active {
                return Err(ApiError::AccountDisabled);
            }
            return Ok(SignedIn { user, issued });
        }
        Err(failure) => failure,
    };
    Err(match failure {
        RefreshFailure::Invalid => ApiError::RefreshInvalid,
        RefreshFailure::Expired => ApiError::RefreshExpired,
        RefreshFailure::Reused(cause) => {
            tracing::warn!(
                cause = cause.as_str(),
                "refresh token reused: session revoked"
            );
            // The revoked session's access tokens stop here at once.
            if let Some(found) =
                sessions::find_presented(core.db.pool(), &tokens::hash(presented)).await?
            {
                core.users.evict(&found.family.user_id);
            }
            ApiError::RefreshReused
        }
        // Revoked when an admin disabled the person: say so while they still are.
        RefreshFailure::Disabled { user_id } => {
            let still_disabled = users::find_by_id(core.db.pool(), &user_id)
                .await?
                .is_some_and(|u| !u.active);
            if still_disabled {
                ApiError::AccountDisabled
            } else {
                ApiError::RefreshInvalid
            }
        }
    })
}

/// Ends the session of any of its tokens (used, unused or expired), its access tokens
/// with it. Unknown tokens are ignored: logout is idempotent.
pub async fn logout(
    core: &Core,
    presented: &str,
    client: Client<'_>,
    now: i64,
) -> Result<(), ApiError> {
    if !tokens::looks_valid(presented) {
        return Ok(());
    }
    let Some(found) = sessions::find_presented(core.db.pool(), &tokens::hash(presented)).await?
    else {
        return Ok(());
    };
    let user = found.family.user_id.as_str();
    let mut tx = core.db.begin_write().await?;
    if sessions::revoke(&mut *tx, &found.family.id, now, "logout").await? {
        record(
            &mut tx,
            Action::Logout,
            Some(user),
            Some(user),
            client,
            None,
            now,
        )
        .await?;
    }
    core.commit_change(tx, user).await?;
    Ok(())
}

/// Ends one of the person's sessions: its refresh and access tokens stop at once.
/// `NotFound` when it is not one of their live sessions.
pub async fn end_one(
    core: &Core,
    user_id: &str,
    session_id: &str,
    now: i64,
) -> Result<(), ApiError> {
    let mut tx = core.db.begin_write().await?;
    if !sessions::revoke_of_user(&mut *tx, user_id, session_id, now, "revoked by its owner").await?
    {
        return Err(ApiError::NotFound);
    }
    let detail = format!("session {session_id}");
    record(
        &mut tx,
        Action::SessionRevoked,
        Some(user_id),
        Some(user_id),
        Client::default(),
        Some(&detail),
        now,
    )
    .await?;
    core.commit_change(tx, user_id).await?;
    Ok(())
}

/// Ends every session of the person but `keep` (the one asking).
pub async fn end_others(core: &Core, user_id: &str, keep: &str, now: i64) -> Result<u64, ApiError> {
    let mut tx = core.db.begin_write().await?;
    let ended = end_sessions_in(
        &mut tx,
        user_id,
        Ending::AllBut(keep),
        "revoked by its owner from another session",
        now,
    )
    .await?;
    let detail = format!("{ended} other sessions");
    record(
        &mut tx,
        Action::SessionRevoked,
        Some(user_id),
        Some(user_id),
        Client::default(),
        Some(&detail),
        now,
    )
    .await?;
    core.commit_change(tx, user_id).await?;
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prometheus::{LOGIN_OUTCOMES, REFRESH_OUTCOMES};

    #[test]
    fn every_login_outcome_of_the_contract_is_counted_and_nothing_else() {
        let outcomes: Vec<_> = [
            None,
            Some(ApiError::InvalidCredentials),
            Some(ApiError::RateLimited { retry_after: 60 }),
            Some(ApiError::AccountDisabled),
            Some(ApiError::Overloaded { retry_after: 1 }),
        ]
        .iter()
        .map(|error| login_outcome(error.as_ref()))
        .collect();
        assert_eq!(outcomes, LOGIN_OUTCOMES.map(Some));
        // The server's own trouble says nothing about the attempt.
        assert_eq!(login_outcome(Some(&ApiError::Unavailable)), None);
    }

    #[test]
    fn every_refresh_outcome_of_the_contract_is_counted() {
        let issued = Issued {
            refresh_token: String::new(),
            expires_at: 0,
            family_id: String::new(),
            user_id: String::new(),
        };
        let outcomes = [
            Ok((issued.clone(), Renewal::Rotated)),
            Ok((issued, Renewal::Converged)),
            Err(RefreshFailure::Reused(ReuseCause::AfterGrace)),
            Err(RefreshFailure::Invalid),
            Err(RefreshFailure::Expired),
        ]
        .map(|answer| refresh_outcome(&answer));
        assert_eq!(outcomes, REFRESH_OUTCOMES);
        let disabled = Err(RefreshFailure::Disabled {
            user_id: "someone".into(),
        });
        assert_eq!(refresh_outcome(&disabled), "invalid");
    }
}
