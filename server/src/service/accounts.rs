//! Accounts: creating them, their password, their access, ending all their sessions.

use super::{
    count_attempt, end_sessions_in, give_back, judged, record, recovery, sessions, Client, Core,
    Ending, SignedIn,
};
use crate::{
    auth::{
        access,
        throttle::{self, Limit},
        tokens, validate,
    },
    db::{
        audit::Action,
        password_resets,
        users::{self, InsertUserError, NewUser, Role, UserRow},
    },
    error::ApiError,
};
use secrecy::{ExposeSecret, SecretString};

/// A new account's details as given (validated by the service).
pub struct NewAccount {
    pub email: String,
    pub name: String,
    pub password: SecretString,
}

impl NewAccount {
    /// The contract's input rules: the trimmed and normalised email and name, or every
    /// field's error.
    fn validated(self) -> Result<NewAccount, ApiError> {
        let mut errors = validate::FieldErrors::new();
        let name = validate::name(&self.name, &mut errors);
        let email = validate::email(&self.email, &mut errors);
        validate::password(self.password.expose_secret(), &mut errors);
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(NewAccount {
            email,
            name,
            password: self.password,
        })
    }
}

/// Creates a person's account (role `user`), mails them a verification code, and signs
/// them in. Registrations are limited per address, counted before anything else (so
/// malformed tries count too) and before the password is hashed.
pub async fn register(
    core: &Core,
    account: NewAccount,
    client: Client<'_>,
    now: i64,
) -> Result<SignedIn, ApiError> {
    let ip = throttle::address_key(client.ip.unwrap_or("unknown"));
    let limits = [Limit::new(format!("register:{ip}"), throttle::IP_REGISTER)];
    count_attempt(core, &limits, now).await?;
    let account = account.validated()?;
    let password_hash = judged(
        core,
        &limits,
        now,
        core.passwords.hash(&account.password).await,
    )
    .await?;
    let first_token = tokens::random_token(&mut rand::rng());
    let mut tx = core.db.begin_write().await?;
    let user = insert(
        &mut tx,
        &account.email,
        &account.name,
        &password_hash,
        Role::User,
        now,
    )
    .await?;
    // One transaction: an account never exists without its first code and session.
    let code_mail = recovery::new_code(&mut *tx, core, &user, now).await?;
    let issued = sessions::start_in(
        &mut tx,
        &user.id,
        now,
        core.lifetimes,
        client,
        sessions::PASSWORD,
        first_token,
    )
    .await?;
    tx.commit().await?;
    if let Some(mail) = code_mail {
        core.mailer.queue(mail);
    }
    tracing::info!(user_id = %user.id, "registered");
    Ok(SignedIn { user, issued })
}

/// Creates an admin (the command line: admins are never made by registration).
pub async fn create_admin(core: &Core, account: NewAccount, now: i64) -> Result<UserRow, ApiError> {
    let account = account.validated()?;
    let password_hash = core.passwords.hash(&account.password).await?;
    let mut tx = core.db.begin_write().await?;
    let user = insert(
        &mut tx,
        &account.email,
        &account.name,
        &password_hash,
        Role::Admin,
        now,
    )
    .await?;
    record(
        &mut tx,
        Action::AdminCreated,
        None,
        Some(&user.id),
        Client::default(),
        Some("created by the command line"),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// A new account for someone an identity provider vouched for (their email verified there):
/// role `user`, email verified, no password. Inside the caller's transaction, like every
/// account's creation.
pub(super) async fn create_from_provider(
    tx: &mut crate::db::WriteTx,
    email: &str,
    name: &str,
    now: i64,
) -> Result<UserRow, ApiError> {
    let mut user = insert(tx, email, name, users::NO_PASSWORD, Role::User, now).await?;
    users::mark_email_verified(&mut **tx, &user.id, now).await?;
    user.email_verified = true;
    Ok(user)
}

/// Every account is created here (registration, the command line, identity providers):
/// `email` and `name` already validated.
async fn insert(
    tx: &mut crate::db::WriteTx,
    email: &str,
    name: &str,
    password_hash: &str,
    role: Role,
    now: i64,
) -> Result<UserRow, ApiError> {
    let id = uuid::Uuid::new_v4().to_string();
    users::insert(
        &mut **tx,
        NewUser {
            id: &id,
            email,
            name,
            password_hash,
            role,
            now,
        },
    )
    .await
    .map_err(|e| match e {
        InsertUserError::EmailTaken => ApiError::EmailTaken,
        InsertUserError::Db(e) => ApiError::from(e),
    })
}

/// Makes an existing person an admin (the command line). Only a verified address: else
/// whoever registered someone else's address first would become admin.
pub async fn promote(core: &Core, email: &str, now: i64) -> Result<UserRow, ApiError> {
    // The address as registration stored it (trimmed, NFKC-normalised).
    let mut errors = validate::FieldErrors::new();
    let email = validate::email(email, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let mut tx = core.db.begin_write().await?;
    let user = users::find_by_email(&mut *tx, &email)
        .await?
        .ok_or(ApiError::NotFound)?;
    if !user.email_verified {
        return Err(ApiError::EmailUnverified);
    }
    users::set_role(&mut *tx, &user.id, Role::Admin, now).await?;
    record(
        &mut tx,
        Action::AccessChanged,
        None,
        Some(&user.id),
        Client::default(),
        Some("promoted to admin by the command line"),
        now,
    )
    .await?;
    core.commit_change(tx, &user.id).await?;
    Ok(user)
}

/// A password change asked by the signed-in person.
pub struct PasswordChange {
    pub current: SecretString,
    pub new: SecretString,
}

/// Changes the person's password (the current one required) and ends every other session
/// of theirs and every pending reset link; the session asking goes on.
pub async fn change_password(
    core: &Core,
    user_id: &str,
    session_id: &str,
    change: PasswordChange,
    client: Client<'_>,
    now: i64,
) -> Result<(), ApiError> {
    let ip = throttle::address_key(client.ip.unwrap_or("unknown"));
    // Per address, and per person from all addresses together: a stolen session on
    // rotating addresses gets no more guesses at the current password than a login would.
    let limits = [
        Limit::new(format!("password:{user_id}:{ip}"), throttle::ACCOUNT_AND_IP),
        Limit::new(format!("password-account:{user_id}"), throttle::ACCOUNT),
    ];
    count_attempt(core, &limits, now).await?;
    let row = users::find_by_id(core.db.pool(), user_id)
        .await?
        .ok_or(ApiError::TokenInvalid)?;
    // Signed in through an identity provider and never given a password: no current one
    // to prove (one is set through the reset link).
    if row.password_hash == users::NO_PASSWORD {
        return Err(ApiError::PasswordNotSet);
    }
    let verified = core
        .passwords
        .verify(&change.current, Some(&row.password_hash))
        .await;
    if !judged(core, &limits, now, verified).await?.valid {
        return Err(ApiError::InvalidCredentials);
    }
    give_back(core, &limits, now).await;
    let fresh = core.passwords.hash(&change.new).await?;
    let mut tx = core.db.begin_write().await?;
    // Checked against the hash read before hashing: changed since (or removed), it wins.
    if !users::replace_password_hash(&mut *tx, user_id, &row.password_hash, &fresh, now).await? {
        return Err(ApiError::InvalidCredentials);
    }
    // A link mailed before the change must not undo it, nor a sign-in waiting for its
    // second step (proven with the old password) complete.
    password_resets::delete_for_user(&mut *tx, user_id).await?;
    crate::db::mfa::end_challenges(&mut *tx, user_id).await?;
    let ended = end_sessions_in(
        &mut tx,
        user_id,
        Ending::AllBut(session_id),
        "password changed",
        now,
    )
    .await?;
    record(
        &mut tx,
        Action::PasswordChanged,
        Some(user_id),
        Some(user_id),
        client,
        None,
        now,
    )
    .await?;
    core.commit_change(tx, user_id).await?;
    tracing::info!(user_id, other_sessions_ended = ended, "password changed");
    Ok(())
}

/// A change of someone's access by an admin; `None` keeps the current value.
#[derive(Clone, Copy, Debug, Default)]
pub struct AccessChange {
    pub role: Option<Role>,
    pub active: Option<bool>,
}

/// Changes a person's role and/or whether they may sign in; takes effect at once (a
/// demoted person's access tokens stop, a disabled person's sessions and reset links
/// end). The last active admin stays one, decided under a lock on every active admin, so
/// two admins disabling each other at once cannot both succeed.
pub async fn change_access(
    core: &Core,
    admin_id: &str,
    target_id: &str,
    change: AccessChange,
    now: i64,
) -> Result<UserRow, ApiError> {
    let mut tx = core.db.begin_write().await?;
    // Only a change that can take an admin away needs the count, and so the lock; taken
    // before anyone is read, so what is read is what the others left.
    let may_remove_admin = change.role == Some(Role::User) || change.active == Some(false);
    let active_admins = if may_remove_admin {
        users::lock_active_admins(&mut *tx).await?
    } else {
        0
    };
    still_admin(&mut tx, admin_id).await?;
    // The person's row held before it is read: another admin's change under way is waited
    // for, and the value this change keeps (say, `active` when it promotes) is the one that
    // change left, not one from before it.
    users::hold(&mut *tx, target_id).await?;
    // Counted again: a promotion of this very person may have committed during the wait,
    // and the first count could not see them (nor lock them).
    let active_admins = if may_remove_admin {
        users::lock_active_admins(&mut *tx).await?
    } else {
        active_admins
    };
    let target = users::find_by_id(&mut *tx, target_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let role = change.role.unwrap_or(target.role);
    let active = change.active.unwrap_or(target.active);
    let before = access::Access {
        role: target.role,
        active: target.active,
    };
    let after = access::Access { role, active };
    if access::removes_last_admin(before, after, active_admins) {
        return Err(ApiError::LastAdmin);
    }
    if before != after {
        users::update_access(&mut *tx, target_id, role, active, now).await?;
        if !active {
            end_sessions_in(
                &mut tx,
                target_id,
                Ending::All,
                crate::db::sessions::DISABLED_BY_ADMIN,
                now,
            )
            .await?;
            password_resets::delete_for_user(&mut *tx, target_id).await?;
        }
        let detail = format!(
            "role {} to {}, active {} to {active}",
            target.role.as_str(),
            role.as_str(),
            target.active
        );
        record(
            &mut tx,
            Action::AccessChanged,
            Some(admin_id),
            Some(target_id),
            Client::default(),
            Some(&detail),
            now,
        )
        .await?;
    }
    let updated = users::find_by_id(&mut *tx, target_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    core.commit_change(tx, target_id).await?;
    tracing::info!(admin = %admin_id, user_id = %target_id, role = role.as_str(), active, "access changed by an admin");
    Ok(updated)
}

/// Ends every session of a person, access tokens included (an admin's action).
pub async fn end_all_sessions(
    core: &Core,
    admin_id: &str,
    target_id: &str,
    now: i64,
) -> Result<(), ApiError> {
    let mut tx = core.db.begin_write().await?;
    still_admin(&mut tx, admin_id).await?;
    users::find_by_id(&mut *tx, target_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    end_sessions_in(
        &mut tx,
        target_id,
        Ending::All,
        "sessions revoked by an admin",
        now,
    )
    .await?;
    record(
        &mut tx,
        Action::SessionsRevokedByAdmin,
        Some(admin_id),
        Some(target_id),
        Client::default(),
        None,
        now,
    )
    .await?;
    core.commit_change(tx, target_id).await?;
    tracing::info!(admin = %admin_id, user_id = %target_id, "sessions revoked by an admin");
    Ok(())
}

/// The acting admin, read in the change's own transaction: an admin disabled or demoted
/// while their request was on its way (or on another instance, past its cache) acts no more.
async fn still_admin(tx: &mut crate::db::WriteTx, admin_id: &str) -> Result<(), ApiError> {
    let actor = users::find_by_id(&mut **tx, admin_id).await?;
    match actor {
        Some(a) if a.active && access::has_role(a.role, Role::Admin) => Ok(()),
        _ => Err(ApiError::Forbidden),
    }
}
