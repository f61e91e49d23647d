//! Signing in with identity providers: starting a flow, finishing it at the callback, and
//! which account a verified identity signs into.
//!
//! The rules, in order, for an identity (provider, subject) that comes back verified:
//! 1. linked already: its account (refused when disabled);
//! 2. else, only when the provider vouches for the email (`email_verified`), the account
//!    with that email gets the identity. When that account had not proved its address, its
//!    password is removed and its sessions end: whoever registered the address first may
//!    not be its owner, and must not keep a way in;
//! 3. else a new account (role `user`, email verified, no password).
//!
//! An identity without a verified email neither creates nor links an account.

use super::{
    accounts, count_attempt, end_sessions_in, record, sessions, Client, Core, Ending, SignedIn,
};
use crate::{
    auth::{
        throttle::{self, Limit},
        tokens, validate,
    },
    db::{
        audit::Action,
        identities::{self, LinkError, NewIdentity},
        oidc_flows::{self, NewFlow},
        users::{self, UserRow},
        WriteTx,
    },
    error::ApiError,
    oidc::{Asserted, OidcError, Provider},
};
use subtle::ConstantTimeEq;

/// How long a sign-in at a provider may take, from the start route to the callback (the
/// flow cookie's `Max-Age` too).
pub const FLOW_SECS: i64 = 600;

/// A flow begun: where to send the browser, and the flow token for its cookie.
pub struct Started {
    pub authorize_url: String,
    pub flow_token: String,
}

/// Begins a sign-in at `provider` from the address `ip`, coming back to `next` (a same-site
/// path, checked by the caller). Each start writes a row: starts are limited per address.
pub async fn start_sign_in(
    core: &Core,
    provider: &Provider,
    next: &str,
    ip: &str,
    now: i64,
) -> Result<Started, ApiError> {
    let ip = throttle::address_key(ip);
    count_attempt(
        core,
        &[Limit::new(
            format!("oidc-start:{ip}"),
            throttle::IP_OIDC_START,
        )],
        now,
    )
    .await?;
    start(core, provider, next, None, now).await
}

/// The account a link flow links to, and the session of the browser that began it.
struct Linking<'a> {
    user_id: &'a str,
    family_id: &'a str,
}

/// Begins a sign-in at `provider` that comes back to `next`, or that links the identity
/// instead (`link`).
async fn start(
    core: &Core,
    provider: &Provider,
    next: &str,
    link: Option<Linking<'_>>,
    now: i64,
) -> Result<Started, ApiError> {
    let authorization = provider.authorize().map_err(|e| match e {
        OidcError::Unavailable => ApiError::ProviderUnavailable,
        OidcError::Failed(reason) => ApiError::internal(reason),
    })?;
    let flow_token = tokens::random_token(&mut rand::rng());
    let mut tx = core.db.begin_write().await?;
    oidc_flows::create(
        &mut *tx,
        NewFlow {
            id_hash: &tokens::hash(&flow_token),
            provider: &provider.settings.id,
            state: &authorization.state,
            nonce: &authorization.nonce,
            pkce_verifier: &authorization.pkce_verifier,
            next_path: next,
            link_user_id: link.as_ref().map(|l| l.user_id),
            link_family_id: link.as_ref().map(|l| l.family_id),
            now,
            expires_at: now + FLOW_SECS,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Started {
        authorize_url: authorization.url,
        flow_token,
    })
}

/// How long a link ticket lasts: the account page navigates with it at once.
const LINK_TICKET_SECS: i64 = 60;

/// A one-time ticket for the signed-in `user_id` to link an identity.
pub async fn new_link_ticket(core: &Core, user_id: &str, now: i64) -> Result<String, ApiError> {
    // An account that has not proved its address may link too: should the address turn
    // out to be someone else's, proving it ends this account's sessions, its links in
    // progress (each bound to the session that began it) and the identities it linked.
    users::find_by_id(core.db.pool(), user_id)
        .await?
        .ok_or(ApiError::TokenInvalid)?;
    let ticket = tokens::random_token(&mut rand::rng());
    let mut tx = core.db.begin_write().await?;
    oidc_flows::create_link_ticket(
        &mut *tx,
        &tokens::hash(&ticket),
        user_id,
        now + LINK_TICKET_SECS,
    )
    .await?;
    tx.commit().await?;
    Ok(ticket)
}

/// Begins a flow that links the identity to the account of `ticket` (used up here). The
/// browser must be signed in to that account (its refresh cookie, `refresh_token`): a
/// ticket alone, sent to someone else's browser, would link *their* identity to the
/// ticket's account.
pub async fn start_link(
    core: &Core,
    provider: &Provider,
    ticket: &str,
    refresh_token: Option<&str>,
    now: i64,
) -> Result<Started, ApiError> {
    let mut tx = core.db.begin_write().await?;
    let user_id = oidc_flows::consume_link_ticket(&mut *tx, &tokens::hash(ticket), now).await?;
    tx.commit().await?;
    let user_id = user_id.ok_or(ApiError::OidcStateInvalid)?;
    let browser_session = match refresh_token {
        Some(token) if tokens::looks_valid(token) => {
            crate::db::sessions::find_presented(core.db.pool(), &tokens::hash(token))
                .await?
                .filter(|found| {
                    found.family.user_id == user_id
                        && found.family.revoked_at.is_none()
                        && found.family.expires_at > now
                })
        }
        _ => None,
    };
    let Some(session) = browser_session else {
        return Err(ApiError::OidcStateInvalid);
    };
    let link = Linking {
        user_id: &user_id,
        family_id: &session.family.id,
    };
    start(core, provider, "/account", Some(link), now).await
}

/// What came back to the callback.
pub struct Callback<'a> {
    /// From the flow cookie.
    pub flow_token: Option<&'a str>,
    pub state: Option<&'a str>,
    pub code: Option<&'a str>,
    /// The provider's `error` (e.g. `access_denied` when the person said no).
    pub error: Option<&'a str>,
}

/// Where a finished flow leads.
pub enum Finished {
    /// Signed in: a new session, then the page the flow began for.
    SignedIn { signed_in: SignedIn, next: String },
    /// The person's second factor is on: the login page asks for it with this token,
    /// then goes on to `next`.
    SecondFactor { mfa_token: String, next: String },
    /// The identity now belongs to the account that asked to link it.
    Linked,
    /// A link flow that failed after its flow was found: the account page says why.
    LinkFailed(ApiError),
}

/// Finishes a flow at its callback: the flow is used up (once only, whatever follows), the
/// code exchanged, the ID token checked, and the identity signed in or linked.
pub async fn finish(
    core: &Core,
    provider: &Provider,
    callback: Callback<'_>,
    client: Client<'_>,
    now: i64,
) -> Result<Finished, ApiError> {
    let flow_token = callback.flow_token.ok_or(ApiError::OidcStateInvalid)?;
    let id_hash = tokens::hash(flow_token);
    let flow = oidc_flows::find_open(core.db.pool(), &id_hash, &provider.settings.id, now)
        .await?
        .ok_or(ApiError::OidcStateInvalid)?;
    // The state first: a forged callback (another state) must not use up the person's flow.
    let state_matches = callback
        .state
        .is_some_and(|state| bool::from(state.as_bytes().ct_eq(flow.state.as_bytes())));
    if !state_matches {
        return Err(ApiError::OidcStateInvalid);
    }
    let mut tx = core.db.begin_write().await?;
    let consumed = oidc_flows::consume(&mut *tx, &id_hash, now).await?;
    tx.commit().await?;
    if !consumed {
        return Err(ApiError::OidcStateInvalid);
    }
    let provider_id = provider.settings.id.as_str();
    let asserted = async {
        match callback.error {
            Some("access_denied") => return Err(ApiError::OidcCancelled),
            Some(other) => {
                return Err(ApiError::OidcFailed(format!("the provider said {other:?}")))
            }
            None => {}
        }
        let code = callback
            .code
            .ok_or_else(|| ApiError::OidcFailed("no code in the callback".into()))?;
        provider
            .exchange(code, &flow.pkce_verifier, &flow.nonce)
            .await
            .map_err(|e| ApiError::OidcFailed(e.to_string()))
    }
    .await;
    match flow.link_user_id {
        Some(user_id) => Ok(
            match async {
                let linking = Linking {
                    user_id: &user_id,
                    family_id: flow.link_family_id.as_deref().unwrap_or_default(),
                };
                link(core, provider_id, &asserted?, linking, client, now).await
            }
            .await
            {
                Ok(()) => Finished::Linked,
                Err(e) => Finished::LinkFailed(e),
            },
        ),
        None => match sign_in(core, provider_id, &asserted?, client, now).await {
            Ok(signed_in) => Ok(Finished::SignedIn {
                signed_in,
                next: flow.next_path,
            }),
            Err(ApiError::MfaRequired { mfa_token, .. }) => Ok(Finished::SecondFactor {
                mfa_token,
                next: flow.next_path,
            }),
            Err(e) => Err(e),
        },
    }
}

/// Signs in the account `asserted` belongs to by the rules above, creating it when none
/// does. One transaction; when a concurrent sign-in of the same person wins a race for the
/// identity or the email, the rules run once more on what it wrote.
pub async fn sign_in(
    core: &Core,
    provider: &str,
    asserted: &Asserted,
    client: Client<'_>,
    now: i64,
) -> Result<SignedIn, ApiError> {
    for _ in 0..2 {
        let mut tx = core.db.begin_write().await?;
        match resolve(&mut tx, provider, asserted, client, now).await {
            Ok((user, sessions_ended)) => {
                let (first_token, mfa_token) = {
                    let mut rng = rand::rng();
                    (
                        tokens::random_token(&mut rng),
                        tokens::random_token(&mut rng),
                    )
                };
                // A second factor on: what the rules changed stays, but no session yet.
                if let Some(required) =
                    super::mfa::challenge_in(&mut tx, &user.id, provider, mfa_token, now).await?
                {
                    if sessions_ended {
                        core.commit_change(tx, &user.id).await?;
                    } else {
                        tx.commit().await?;
                    }
                    return Err(required);
                }
                let issued = sessions::start_in(
                    &mut tx,
                    &user.id,
                    now,
                    core.lifetimes,
                    client,
                    provider,
                    first_token,
                )
                .await?;
                record(
                    &mut tx,
                    Action::OidcLogin,
                    Some(&user.id),
                    Some(&user.id),
                    client,
                    Some(provider),
                    now,
                )
                .await?;
                if sessions_ended {
                    core.commit_change(tx, &user.id).await?;
                } else {
                    tx.commit().await?;
                }
                tracing::info!(user_id = %user.id, provider, "signed in with an identity provider");
                return Ok(SignedIn { user, issued });
            }
            Err(Resolve::Raced) => continue,
            Err(Resolve::Refused(error)) => return Err(error),
        }
    }
    Err(ApiError::internal("identity sign-in kept racing"))
}

enum Resolve {
    /// A concurrent request wrote the identity or the account first: run the rules again.
    Raced,
    Refused(ApiError),
}

impl From<sqlx::Error> for Resolve {
    fn from(e: sqlx::Error) -> Resolve {
        Resolve::Refused(ApiError::from(e))
    }
}

/// The account `asserted` signs into (written inside `tx`), and whether sessions of it
/// ended (rule 2 with an unproven password).
async fn resolve(
    tx: &mut WriteTx,
    provider: &str,
    asserted: &Asserted,
    client: Client<'_>,
    now: i64,
) -> Result<(UserRow, bool), Resolve> {
    if let Some(found) = identities::find(&mut **tx, provider, &asserted.subject).await? {
        // The person's row is held, then the identity read again: an owner proving the
        // address meanwhile (which holds that row, deletes the identities a squatter linked
        // and ends the sessions) is waited for, and a deleted identity signs into nothing
        // of that account (on PostgreSQL; SQLite writes one transaction at a time).
        users::hold(&mut **tx, &found.user_id).await?;
        if let Some(identity) = identities::find(&mut **tx, provider, &asserted.subject).await? {
            let user = users::find_by_id(&mut **tx, &identity.user_id)
                .await?
                .ok_or_else(|| Resolve::Refused(ApiError::internal("identity without account")))?;
            return usable(user).map(|user| (user, false));
        }
    }
    let email = verified_email(asserted).map_err(Resolve::Refused)?;
    let (user, sessions_ended) = match users::find_by_email(&mut **tx, &email).await? {
        Some(found) => {
            // The person's row held, then read again: a disabling under way (whose
            // revocation cannot see the session about to open) is waited for.
            users::hold(&mut **tx, &found.id).await?;
            let user = users::find_by_id(&mut **tx, &found.id)
                .await?
                .ok_or_else(|| Resolve::Refused(ApiError::internal("account gone")))?;
            let mut user = usable(user)?;
            let unproven = !user.email_verified;
            if unproven {
                // Whoever set this password never proved the address: it goes, and so does
                // every way in they made: the sessions it opened, the identities they linked,
                // links still on their way. The provider proved the address: it is verified.
                users::set_password_hash(&mut **tx, &user.id, users::NO_PASSWORD, now).await?;
                users::mark_email_verified(&mut **tx, &user.id, now).await?;
                remove_links_of_unproven(tx, &user.id, client, now)
                    .await
                    .map_err(Resolve::Refused)?;
                super::mfa::remove_everything_in(tx, &user.id).await?;
                // Last, as a reset does: a second step or passkey sign-in that held what
                // was just removed has committed its session by now, and it ends too.
                end_sessions_in(tx, &user.id, Ending::All, "unproven password removed", now)
                    .await?;
                user.email_verified = true;
                user.password_hash = users::NO_PASSWORD.into();
            }
            (user, unproven)
        }
        None => {
            let name = asserted
                .name
                .as_deref()
                .and_then(|name| {
                    let mut errors = validate::FieldErrors::new();
                    let name = validate::name(name, &mut errors);
                    errors.is_empty().then_some(name)
                })
                .unwrap_or_else(|| email.clone());
            match accounts::create_from_provider(tx, &email, &name, now).await {
                Ok(user) => (user, false),
                Err(ApiError::EmailTaken) => return Err(Resolve::Raced),
                Err(e) => return Err(Resolve::Refused(e)),
            }
        }
    };
    add_identity(tx, provider, asserted, &email, &user.id, client, now).await?;
    Ok((user, sessions_ended))
}

/// The address of `user_id` proven for the first time (a provider's verified email, a reset
/// link): whoever registered it before its owner keeps no way in through a provider. The
/// identities linked to it go, each audited as unlinked, and links on their way end. Call it
/// after the person's row is written (and so held): a link finishing meanwhile
/// ([`link`]) waits for this transaction, then finds the session that began it ended.
pub(super) async fn remove_links_of_unproven(
    tx: &mut WriteTx,
    user_id: &str,
    client: Client<'_>,
    now: i64,
) -> Result<(), ApiError> {
    for identity in identities::list_for_user(&mut **tx, user_id).await? {
        record(
            tx,
            Action::IdentityUnlinked,
            None,
            Some(user_id),
            client,
            Some(&identity.provider),
            now,
        )
        .await?;
    }
    identities::delete_all_of_user(&mut **tx, user_id).await?;
    oidc_flows::end_links_of_user(tx, user_id, now).await?;
    Ok(())
}

/// A person an identity may sign in: not a disabled one.
fn usable(user: UserRow) -> Result<UserRow, Resolve> {
    if user.active {
        Ok(user)
    } else {
        Err(Resolve::Refused(ApiError::AccountDisabled))
    }
}

/// The provider's email, when it vouches for it, in the form registration stores.
fn verified_email(asserted: &Asserted) -> Result<String, ApiError> {
    let email = match (&asserted.email, asserted.email_verified) {
        (Some(email), true) => email,
        _ => return Err(ApiError::OidcEmailUnverified),
    };
    let mut errors = validate::FieldErrors::new();
    let email = validate::email(email, &mut errors);
    if errors.is_empty() {
        Ok(email)
    } else {
        Err(ApiError::OidcFailed(
            "the provider's email is not an address we accept".into(),
        ))
    }
}

async fn add_identity(
    tx: &mut WriteTx,
    provider: &str,
    asserted: &Asserted,
    email: &str,
    user_id: &str,
    client: Client<'_>,
    now: i64,
) -> Result<(), Resolve> {
    if identities::has_provider(&mut **tx, user_id, provider).await? {
        // Another identity of this provider is linked to the account already (a subject the
        // provider changed, or a second account there): never two of one provider.
        return Err(Resolve::Refused(ApiError::IdentityTaken));
    }
    match identities::insert(
        &mut **tx,
        NewIdentity {
            provider,
            subject: &asserted.subject,
            user_id,
            email,
            now,
        },
    )
    .await
    {
        Ok(()) => {}
        Err(LinkError::Taken) => return Err(Resolve::Raced),
        Err(LinkError::Db(e)) => return Err(e.into()),
    }
    record(
        tx,
        Action::IdentityLinked,
        Some(user_id),
        Some(user_id),
        client,
        Some(provider),
        now,
    )
    .await
    .map_err(Resolve::Refused)
}

/// Links `asserted` to the account that asked for it (the account page's "Connect"), while
/// the session that asked is live. Refused when that identity belongs to another account,
/// or this account has an identity of this provider already.
async fn link(
    core: &Core,
    provider: &str,
    asserted: &Asserted,
    linking: Linking<'_>,
    client: Client<'_>,
    now: i64,
) -> Result<(), ApiError> {
    let user_id = linking.user_id;
    let mut tx = core.db.begin_write().await?;
    // The person's row is held first, then the session read: the owner of the address
    // proving it since the flow began (which ends this account's sessions, holding the
    // same row) is seen here, on PostgreSQL too, and nothing is linked for the squatter.
    if !users::hold(&mut *tx, user_id).await? {
        return Err(ApiError::OidcStateInvalid);
    }
    let live = crate::db::sessions::live_ids_for_user(&mut *tx, user_id, now).await?;
    if !live.iter().any(|id| id == linking.family_id) {
        return Err(ApiError::OidcStateInvalid);
    }
    let user = users::find_by_id(&mut *tx, user_id)
        .await?
        .ok_or(ApiError::OidcStateInvalid)?;
    if !user.active {
        return Err(ApiError::AccountDisabled);
    }
    if let Some(identity) = identities::find(&mut *tx, provider, &asserted.subject).await? {
        return if identity.user_id == user_id {
            Ok(())
        } else {
            Err(ApiError::IdentityTaken)
        };
    }
    // Without a verified email from the provider nothing is linked, as nothing is signed
    // into; the email is stored in the form registration stores, as a sign-in's is.
    let email = verified_email(asserted)?;
    match add_identity(&mut tx, provider, asserted, &email, user_id, client, now).await {
        Ok(()) => {}
        Err(Resolve::Raced) => return Err(ApiError::IdentityTaken),
        Err(Resolve::Refused(e)) => return Err(e),
    }
    tx.commit().await?;
    Ok(())
}

/// How `user_id` can sign in: whether a password is set, and the linked identities.
pub async fn methods(
    core: &Core,
    user_id: &str,
) -> Result<(bool, Vec<identities::IdentityRow>), ApiError> {
    let user = users::find_by_id(core.db.pool(), user_id)
        .await?
        .ok_or(ApiError::TokenInvalid)?;
    let linked = identities::list_for_user(core.db.pool(), user_id).await?;
    Ok((user.password_hash != users::NO_PASSWORD, linked))
}

/// Unlinks the person's identity at `provider`, unless it is their last way to sign in (no
/// password and no other identity): `last_sign_in_method`.
pub async fn unlink(
    core: &Core,
    user_id: &str,
    provider: &str,
    client: Client<'_>,
    now: i64,
) -> Result<(), ApiError> {
    let mut tx = core.db.begin_write().await?;
    // Two unlinks at once (PostgreSQL runs them side by side) would each see the other's
    // identity still there and leave none: the person's row is held first.
    if !users::hold(&mut *tx, user_id).await? {
        return Err(ApiError::TokenInvalid);
    }
    let user = users::find_by_id(&mut *tx, user_id)
        .await?
        .ok_or(ApiError::TokenInvalid)?;
    let linked = identities::list_for_user(&mut *tx, user_id).await?;
    if !linked.iter().any(|i| i.provider == provider) {
        return Err(ApiError::NotFound);
    }
    if user.password_hash == users::NO_PASSWORD && linked.len() == 1 {
        return Err(ApiError::LastSignInMethod);
    }
    identities::delete(&mut *tx, user_id, provider).await?;
    record(
        &mut tx,
        Action::IdentityUnlinked,
        Some(user_id),
        Some(user_id),
        client,
        Some(provider),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
