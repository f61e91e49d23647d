//! Passkeys: registering them from the account page (several per person, named,
//! removable) and signing in with one. A passkey with user verification is both factors:
//! its sign-in gets a session at once, second factor or not.
//!
//! Each ceremony (start, then finish) keeps its state in the database under its challenge,
//! so any instance may answer the finish; the finish takes the row out, so a challenge
//! answers once.

use super::{count_attempt, record, sessions, Client, Core, SignedIn};
use crate::{
    auth::{
        passkeys::{challenge_key, claimed_challenge, require_resident_key},
        throttle::{self, Limit},
        tokens,
    },
    db::{
        audit::Action,
        passkeys::{self, CeremonyRow, InsertPasskeyError, NewCeremony, NewPasskey, PasskeyRow},
        users,
    },
    error::ApiError,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Uuid, Webauthn,
};

/// How long a ceremony waits for its finish (webauthn-rs's own timeout is as long).
pub const CEREMONY_SECS: i64 = 5 * 60;
/// A session begun with a passkey, as `GET /api/sessions` shows it.
pub const PASSKEY: &str = "passkey";
const REGISTER: &str = "register";
const SIGN_IN: &str = "sign_in";
/// Names are for people to tell their passkeys apart.
const NAME_MAX: usize = 60;

/// The site as a relying party, or why it has no passkeys (`PUBLIC_URL` an IP address).
fn relying_party(core: &Core) -> Result<&Webauthn, ApiError> {
    core.webauthn
        .as_deref()
        .map_err(|why| ApiError::PasskeyInvalid(format!("passkeys are off on this server: {why}")))
}

/// The passkey a row holds.
fn stored(row: &PasskeyRow) -> Result<Passkey, ApiError> {
    serde_json::from_str(&row.passkey).map_err(ApiError::internal)
}

/// A passkey's name as given: trimmed, without control characters; "Passkey" when none.
fn clean_name(name: Option<&str>) -> Result<String, ApiError> {
    let name = name.unwrap_or_default().trim();
    if name.chars().any(char::is_control) || name.chars().count() > NAME_MAX {
        return Err(ApiError::Validation(
            [(
                "name".to_string(),
                format!("Up to {NAME_MAX} characters, without control characters."),
            )]
            .into(),
        ));
    }
    Ok(if name.is_empty() { "Passkey" } else { name }.to_string())
}

async fn start_ceremony(
    core: &Core,
    challenge: &[u8],
    kind: &str,
    user_id: Option<&str>,
    name: Option<&str>,
    state: String,
    now: i64,
) -> Result<(), ApiError> {
    let mut tx = core.db.begin_write().await?;
    // A person has one registration waiting at a time: a new start replaces the earlier
    // one (as a new authenticator-app setup does), so starts repeated with a stolen or
    // scripted access token cannot pile up rows. The person's row is held first, so two
    // starts at once on PostgreSQL take turns and the second sees the first's ceremony.
    if let (REGISTER, Some(user_id)) = (kind, user_id) {
        if !users::hold(&mut *tx, user_id).await? {
            return Err(ApiError::TokenInvalid);
        }
        passkeys::delete_waiting_ceremonies(&mut *tx, REGISTER, user_id).await?;
    }
    passkeys::create_ceremony(
        &mut *tx,
        NewCeremony {
            challenge: &challenge_key(challenge),
            kind,
            user_id,
            name,
            state: &state,
            expires_at: now + CEREMONY_SECS,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The ceremony a browser's answer (its `clientDataJSON`) belongs to, taken out: it answers
/// once, whatever the verification then says.
async fn take_ceremony(
    core: &Core,
    client_data_json: &[u8],
    kind: &str,
    user_id: Option<&str>,
    refused: impl Fn(String) -> ApiError,
    now: i64,
) -> Result<CeremonyRow, ApiError> {
    let challenge = claimed_challenge(client_data_json)
        .ok_or_else(|| refused("no challenge in the client data".into()))?;
    let gone = || refused("no such ceremony, or it expired or was answered".into());
    // Anyone may post an answer: one to no ceremony costs a read, never a write turn.
    if !passkeys::ceremony_waits(core.db.pool(), &challenge, kind, user_id, now).await? {
        return Err(gone());
    }
    let mut tx = core.db.begin_write().await?;
    let ceremony = passkeys::take_ceremony(&mut *tx, &challenge, kind, user_id, now).await?;
    tx.commit().await?;
    ceremony.ok_or_else(gone)
}

/// WebAuthn creation options for a new passkey of the person, to be called `name`: a
/// discoverable credential, user verification required, none of their passkeys again.
pub async fn start_registration(
    core: &Core,
    user_id: &str,
    name: Option<&str>,
    now: i64,
) -> Result<serde_json::Value, ApiError> {
    let rp = relying_party(core)?;
    let name = clean_name(name)?;
    count_attempt(
        core,
        &[Limit::new(
            format!("passkey-register:{user_id}"),
            throttle::PERSON_PASSKEY_REGISTER,
        )],
        now,
    )
    .await?;
    let pool = core.db.pool();
    let user = users::find_by_id(pool, user_id)
        .await?
        .ok_or(ApiError::TokenInvalid)?;
    let mut exclude = Vec::new();
    for row in passkeys::of_user(pool, user_id).await? {
        exclude.push(stored(&row)?.cred_id().clone());
    }
    let handle = Uuid::parse_str(user_id).map_err(ApiError::internal)?;
    let (mut options, state) = rp
        .start_passkey_registration(handle, &user.email, &user.name, Some(exclude))
        .map_err(ApiError::internal)?;
    require_resident_key(&mut options);
    let state = serde_json::to_string(&state).map_err(ApiError::internal)?;
    start_ceremony(
        core,
        options.public_key.challenge.as_ref(),
        REGISTER,
        Some(user_id),
        Some(&name),
        state,
        now,
    )
    .await?;
    serde_json::to_value(&options).map_err(ApiError::internal)
}

/// Checks the authenticator's answer to [`start_registration`] and keeps the passkey.
pub async fn finish_registration(
    core: &Core,
    user_id: &str,
    session_id: &str,
    credential: serde_json::Value,
    client: Client<'_>,
    now: i64,
) -> Result<PasskeyRow, ApiError> {
    let rp = relying_party(core)?;
    let credential: RegisterPublicKeyCredential = serde_json::from_value(credential)
        .map_err(|e| ApiError::PasskeyInvalid(format!("not a WebAuthn registration: {e}")))?;
    // Only the person who began it finishes it (another's attempt leaves it alone).
    let ceremony = take_ceremony(
        core,
        credential.response.client_data_json.as_ref(),
        REGISTER,
        Some(user_id),
        ApiError::PasskeyInvalid,
        now,
    )
    .await?;
    let state: PasskeyRegistration =
        serde_json::from_str(&ceremony.state).map_err(ApiError::internal)?;
    let passkey = rp
        .finish_passkey_registration(&credential, &state)
        .map_err(|e| ApiError::PasskeyInvalid(e.to_string()))?;
    let row = PasskeyRow {
        id: Uuid::new_v4().to_string(),
        user_id: user_id.to_string(),
        credential_id: URL_SAFE_NO_PAD.encode(passkey.cred_id().as_ref()),
        name: ceremony.name.unwrap_or_else(|| "Passkey".into()),
        passkey: serde_json::to_string(&passkey).map_err(ApiError::internal)?,
        created_at: now,
        last_used_at: None,
    };
    let mut tx = core.db.begin_write().await?;
    // The person's row first: a change that removes their passkeys and ends their sessions
    // (an unproven address proven by its owner) holds it too, so one waits for the other,
    // and the insert keeps nothing for a session that change ended.
    users::hold(&mut *tx, user_id).await?;
    passkeys::insert(
        &mut *tx,
        NewPasskey {
            id: &row.id,
            user_id,
            session_id,
            credential_id: &row.credential_id,
            name: &row.name,
            passkey: &row.passkey,
            now,
        },
    )
    .await
    .map_err(|e| match e {
        InsertPasskeyError::Taken => {
            ApiError::PasskeyInvalid("that credential is registered already".into())
        }
        InsertPasskeyError::SessionEnded => {
            ApiError::PasskeyInvalid("the session ended during the registration".into())
        }
        InsertPasskeyError::Db(e) => ApiError::from(e),
    })?;
    record(
        &mut tx,
        Action::PasskeyAdded,
        Some(user_id),
        Some(user_id),
        client,
        Some(&row.name),
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user_id, passkey = %row.id, "passkey added");
    Ok(row)
}

/// The person's passkeys.
pub async fn list(core: &Core, user_id: &str) -> Result<Vec<PasskeyRow>, ApiError> {
    Ok(passkeys::of_user(core.db.pool(), user_id).await?)
}

/// Removes one of the person's passkeys (404 when they have none of that id).
pub async fn remove(
    core: &Core,
    user_id: &str,
    id: &str,
    client: Client<'_>,
    now: i64,
) -> Result<(), ApiError> {
    let mut tx = core.db.begin_write().await?;
    if !passkeys::delete(&mut *tx, user_id, id).await? {
        return Err(ApiError::NotFound);
    }
    record(
        &mut tx,
        Action::PasskeyRemoved,
        Some(user_id),
        Some(user_id),
        client,
        Some(id),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// WebAuthn request options for "Sign in with a passkey": any discoverable credential of
/// this site, user verification required. Limited per address (each writes a ceremony).
pub async fn start_sign_in(
    core: &Core,
    client: Client<'_>,
    now: i64,
) -> Result<serde_json::Value, ApiError> {
    let rp = relying_party(core).map_err(|e| ApiError::PasskeySignInRefused(e.to_string()))?;
    let ip = throttle::address_key(client.ip.unwrap_or("unknown"));
    count_attempt(
        core,
        &[Limit::new(
            format!("passkey:{ip}"),
            throttle::IP_PASSKEY_START,
        )],
        now,
    )
    .await?;
    let (mut options, state) = rp
        .start_discoverable_authentication()
        .map_err(ApiError::internal)?;
    // A button asks for it: the browser's own dialog, not autofill's conditional UI.
    options.mediation = None;
    let state = serde_json::to_string(&state).map_err(ApiError::internal)?;
    start_ceremony(
        core,
        options.public_key.challenge.as_ref(),
        SIGN_IN,
        None,
        None,
        state,
        now,
    )
    .await?;
    serde_json::to_value(&options).map_err(ApiError::internal)
}

/// Checks the authenticator's answer to [`start_sign_in`] and signs its person in, as a
/// login does. Anything wrong with the answer is `passkey_invalid` (401).
pub async fn finish_sign_in(
    core: &Core,
    credential: serde_json::Value,
    client: Client<'_>,
    now: i64,
) -> Result<SignedIn, ApiError> {
    let refused = ApiError::PasskeySignInRefused;
    let rp = relying_party(core).map_err(|e| refused(e.to_string()))?;
    let credential: PublicKeyCredential = serde_json::from_value(credential)
        .map_err(|e| refused(format!("not a WebAuthn assertion: {e}")))?;
    let ceremony = take_ceremony(
        core,
        credential.response.client_data_json.as_ref(),
        SIGN_IN,
        None,
        refused,
        now,
    )
    .await?;
    let state: DiscoverableAuthentication =
        serde_json::from_str(&ceremony.state).map_err(ApiError::internal)?;
    let (handle, raw_id) = rp
        .identify_discoverable_authentication(&credential)
        .map_err(|e| refused(e.to_string()))?;
    let user_id = handle.to_string();
    // The credential must be the one the user handle's person registered.
    let row = passkeys::find(core.db.pool(), &user_id, &URL_SAFE_NO_PAD.encode(raw_id))
        .await?
        .ok_or_else(|| refused("no such passkey of that person".into()))?;
    let mut passkey = stored(&row)?;
    let result = rp
        .finish_discoverable_authentication(&credential, state, &[DiscoverableKey::from(&passkey)])
        .map_err(|e| refused(e.to_string()))?;
    // The new signature counter (checked above: one that went backwards was refused).
    if result.needs_update() {
        passkey.update_credential(&result);
    }
    let updated = serde_json::to_string(&passkey).map_err(ApiError::internal)?;
    let first_token = tokens::random_token(&mut rand::rng());
    let mut tx = core.db.begin_write().await?;
    // The person's row held first: a disabling under way (whose revocation cannot see the
    // session about to open) is waited for, and then read.
    users::hold(&mut *tx, &user_id).await?;
    let user = users::find_by_id(&mut *tx, &user_id)
        .await?
        .ok_or_else(|| refused("the passkey's person is gone".into()))?;
    if !user.active {
        return Err(ApiError::AccountDisabled);
    }
    // Only over the state the counter was checked against: a sign-in racing this one with
    // the same key (a clone), or the passkey's removal, leaves this one nothing.
    if !passkeys::used(&mut *tx, &row.id, &row.passkey, &updated, now).await? {
        return Err(refused("the passkey changed during the sign-in".into()));
    }
    record(
        &mut tx,
        Action::LoginSucceeded,
        Some(&user_id),
        Some(&user_id),
        client,
        Some("passkey"),
        now,
    )
    .await?;
    let issued = sessions::start_in(
        &mut tx,
        &user_id,
        now,
        core.lifetimes,
        client,
        PASSKEY,
        first_token,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user_id, "signed in with a passkey");
    Ok(SignedIn { user, issued })
}
