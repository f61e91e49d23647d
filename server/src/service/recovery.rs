//! Proving an address and getting back in: email verification codes and password reset
//! links. The rules of codes are in `auth::email_code`.

use super::{count_attempt, end_sessions_in, record, Client, Core, Ending};
use crate::{
    auth::{
        email_code::{self, Check, Pending},
        throttle::{self, Budget, Limit},
        tokens,
    },
    db::{
        audit::Action,
        email_codes,
        password_resets::{self, Link},
        users::{self, UserRow},
    },
    error::ApiError,
    mail::Email,
};
use secrecy::SecretString;
use sqlx::{Any, Executor};
use subtle::ConstantTimeEq;

/// Codes sent a person in an hour, on top of the one-a-minute rule.
const RESEND_BUDGET: Budget = Budget {
    limit: 5,
    window_secs: 60 * 60,
};
/// How long an emailed reset link works.
pub const LINK_TTL_SECS: i64 = 30 * 60;
/// Reset links asked for one address: 3 in 15 minutes (whether or not it has an account,
/// so the limit reveals nothing).
const RESET_PER_ADDRESS: Budget = Budget {
    limit: 3,
    window_secs: 15 * 60,
};
/// Reset links asked from one network address: 20 an hour.
const RESET_PER_IP: Budget = Budget {
    limit: 20,
    window_secs: 60 * 60,
};

/// Stores a fresh code for `user` (in the caller's transaction, if any) unless one was
/// sent less than a minute ago, and returns the message carrying it, to be queued once the
/// code is committed; `None` when it is too early.
pub async fn new_code<'e>(
    db: impl Executor<'e, Database = Any>,
    core: &Core,
    user: &UserRow,
    now: i64,
) -> Result<Option<Email>, sqlx::Error> {
    let code = email_code::generate(&mut rand::rng());
    let digest = email_code::digest(&core.secret, &user.id, &code);
    let expires_at = now + email_code::TTL_SECS;
    let sent_before = now - email_code::RESEND_INTERVAL_SECS;
    if !email_codes::replace(db, &user.id, &digest, expires_at, now, sent_before).await? {
        return Ok(None);
    }
    // The code is in the body only: subjects are logged (see `mail`). No free text of the
    // account (its name) either: whoever registers chooses it, and it reaches the address.
    Ok(Some(Email {
        to: user.email.clone(),
        subject: "Your verification code".into(),
        body: format!(
            "Hello,\n\n\
             Your verification code is {code}\n\n\
             Enter it at {url}/verify-email within 10 minutes.\n\n\
             If you did not create an account, ignore this message.\n",
            url = core.public_url,
        ),
    }))
}

/// Checks a code the person typed (already normalised to six digits); on success their
/// email counts as verified. Every try is counted before it is judged.
pub async fn verify_email(
    core: &Core,
    user_id: &str,
    code: &str,
    client: Client<'_>,
    now: i64,
) -> Result<UserRow, ApiError> {
    let row = users::find_by_id(core.db.pool(), user_id)
        .await?
        .ok_or(ApiError::TokenInvalid)?;
    if row.email_verified {
        return Ok(row);
    }
    // A write: in the writer's turn, like every other (SQLite has one writer).
    let mut tx = core.db.begin_write().await?;
    let counted = email_codes::count_attempt(&mut *tx, user_id, now, email_code::DAY_SECS).await?;
    tx.commit().await?;
    let pending = counted.map(|p| Pending {
        digest: p.digest,
        expires_at: p.expires_at,
        attempts: p.attempts,
        day_started: p.day_started,
        day_attempts: p.day_attempts,
    });
    let presented = email_code::digest(&core.secret, user_id, code);
    let matches = pending
        .as_ref()
        .is_some_and(|p| bool::from(p.digest.as_bytes().ct_eq(presented.as_bytes())));
    match email_code::check(pending.as_ref(), matches, now) {
        Check::Verified => {}
        Check::Wrong { attempts_left } => return Err(ApiError::CodeInvalid { attempts_left }),
        Check::Expired | Check::NonePending => return Err(ApiError::CodeExpired),
        Check::AttemptsExceeded => return Err(ApiError::CodeAttemptsExceeded),
        Check::TooManyToday { retry_after } => {
            return Err(ApiError::RateLimited {
                retry_after: retry_after as u64,
            })
        }
    }
    let mut tx = core.db.begin_write().await?;
    users::mark_email_verified(&mut *tx, user_id, now).await?;
    email_codes::delete(&mut *tx, user_id).await?;
    record(
        &mut tx,
        Action::EmailVerified,
        Some(user_id),
        Some(user_id),
        client,
        None,
        now,
    )
    .await?;
    let verified = users::find_by_id(&mut *tx, user_id)
        .await?
        .ok_or(ApiError::TokenInvalid)?;
    core.commit_change(tx, user_id).await?;
    tracing::info!(user_id, "email verified");
    Ok(verified)
}

/// Mails a new code: at most one a minute and five an hour.
pub async fn resend_code(core: &Core, user_id: &str, now: i64) -> Result<(), ApiError> {
    let row = users::find_by_id(core.db.pool(), user_id)
        .await?
        .ok_or(ApiError::TokenInvalid)?;
    if row.email_verified {
        return Err(ApiError::AlreadyVerified);
    }
    let last = email_codes::sent_at(core.db.pool(), &row.id).await?;
    if let Some(wait) = email_code::resend_wait(last, now) {
        return Err(ApiError::RateLimited {
            retry_after: wait as u64,
        });
    }
    let limits = [Limit::new(
        format!("verify-resend:{}", row.id),
        RESEND_BUDGET,
    )];
    count_attempt(core, &limits, now).await?;
    // Decided again in the statement that stores the code: a parallel request got in first.
    // In the writer's turn, like every other write.
    let mut tx = core.db.begin_write().await?;
    let stored = new_code(&mut *tx, core, &row, now).await?;
    tx.commit().await?;
    let Some(email) = stored else {
        return Err(ApiError::RateLimited {
            retry_after: email_code::RESEND_INTERVAL_SECS as u64,
        });
    };
    core.mailer.queue(email);
    tracing::info!(user_id = %row.id, "verification code sent again");
    Ok(())
}

/// Asks for a reset link for `email` (validated). The answer never says whether the
/// address has an account: past the limits, the lookup and the message are made in the
/// background.
pub async fn request_reset(
    core: &Core,
    email: String,
    client: Client<'_>,
    now: i64,
) -> Result<(), ApiError> {
    let ip = client.ip.unwrap_or("unknown").to_string();
    let ip_key = throttle::address_key(&ip);
    let limits = [
        Limit::new(
            format!("forgot:{}", users::email_key(&email)),
            RESET_PER_ADDRESS,
        ),
        Limit::new(format!("forgot-ip:{ip_key}"), RESET_PER_IP),
    ];
    count_attempt(core, &limits, now).await?;
    // Composed through the mailer, so shutdown waits for it as for queued mail.
    let background = core.clone();
    core.mailer
        .compose_and_queue(async move { reset_link(&background, &email, &ip, now).await });
    Ok(())
}

/// The message with a new link, when `email` is an active account's.
async fn reset_link(
    core: &Core,
    email: &str,
    ip: &str,
    now: i64,
) -> Result<Option<Email>, sqlx::Error> {
    let Some(user) = users::find_by_email(core.db.pool(), email).await? else {
        tracing::info!("password reset asked for an unknown address");
        return Ok(None);
    };
    if !user.active {
        tracing::info!(user_id = %user.id, "password reset asked for a disabled account");
        return Ok(None);
    }
    let token = tokens::random_token(&mut rand::rng());
    let mut tx = core.db.begin_write().await?;
    password_resets::insert(
        &mut *tx,
        &tokens::hash(&token),
        &user.id,
        now,
        now + LINK_TTL_SECS,
    )
    .await?;
    crate::db::audit::record(
        &mut *tx,
        crate::db::audit::Event {
            action: Action::PasswordResetRequested,
            actor_id: None,
            subject_id: Some(&user.id),
            ip: Some(ip),
            detail: None,
            now,
        },
    )
    .await?;
    tx.commit().await?;
    // In the fragment, so the token never reaches a server log or a `Referer`.
    let link = format!("{}/reset-password#token={token}", core.public_url);
    tracing::info!(user_id = %user.id, "password reset link queued");
    // No free text of the account (its name) in the message: whoever registered an address
    // chose it, and it would reach that address's owner.
    Ok(Some(Email {
        to: user.email.clone(),
        subject: "Reset your password".into(),
        body: format!(
            "Hello,\n\n\
             Someone (we hope you) asked to reset the password of your account.\n\
             Open this link within 30 minutes to choose a new one:\n\n{link}\n\n\
             The link works once. Every device signed in to your account will be signed out.\n\
             If you did not ask for this, ignore this message: your password stays as it is.\n"
        ),
    }))
}

/// Sets a new password (validated) with a live link, and ends every session of the
/// person. The link is claimed first, in a transaction of its own: a bogus or used link
/// never reaches the hashing pool, and parallel resets with one link hash once. When the
/// hash cannot be made (a busy server's 503), the claim is released and the link works
/// again.
pub async fn reset_password(
    core: &Core,
    token: &str,
    password: SecretString,
    client: Client<'_>,
    now: i64,
) -> Result<(), ApiError> {
    if !tokens::looks_valid(token) {
        return Err(ApiError::ResetTokenInvalid);
    }
    let token_hash = tokens::hash(token);
    let mut tx = core.db.begin_write().await?;
    let user_id = link_is_live(password_resets::claim(&mut tx, &token_hash, now).await?)?;
    tx.commit().await?;
    let password_hash = match core.passwords.hash(&password).await {
        Ok(hash) => hash,
        Err(e) => {
            let mut tx = core.db.begin_write().await?;
            password_resets::release(&mut *tx, &token_hash, now).await?;
            tx.commit().await?;
            return Err(e.into());
        }
    };
    let mut tx = core.db.begin_write().await?;
    // A link sent before an admin disabled the person does not bring the account back.
    let Some(user) = users::find_by_id(&mut *tx, &user_id)
        .await?
        .filter(|u| u.active)
    else {
        return Err(ApiError::ResetTokenInvalid);
    };
    users::set_password_hash(&mut *tx, &user_id, &password_hash, now).await?;
    // The address proven for the first time: whoever registered it before its owner set
    // up any second factor, passkey or provider's identity, and they go with the password.
    // After the person's row is written (and so held): a passkey registration or a link
    // finishing meanwhile waits for this, or is seen by it.
    if !user.email_verified {
        super::mfa::remove_everything_in(&mut tx, &user_id).await?;
        super::identities::remove_links_of_unproven(&mut tx, &user_id, client, now).await?;
    }
    // What the old password proved opens nothing now.
    crate::db::mfa::end_challenges(&mut *tx, &user_id).await?;
    // The link came by mail to the address: that proves it as well as a code would.
    users::mark_email_verified(&mut *tx, &user_id, now).await?;
    password_resets::delete_for_user(&mut *tx, &user_id).await?;
    let ended = end_sessions_in(&mut tx, &user_id, Ending::All, "password reset", now).await?;
    record(
        &mut tx,
        Action::PasswordReset,
        Some(&user_id),
        Some(&user_id),
        client,
        None,
        now,
    )
    .await?;
    core.commit_change(tx, &user_id).await?;
    tracing::info!(user_id = %user_id, sessions_ended = ended, "password reset");
    Ok(())
}

fn link_is_live(link: Link) -> Result<String, ApiError> {
    match link {
        Link::Live { user_id } => Ok(user_id),
        Link::Expired => Err(ApiError::ResetTokenExpired),
        Link::Invalid => Err(ApiError::ResetTokenInvalid),
    }
}
