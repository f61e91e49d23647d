//! The access tokens' signing keys: the first one imported from `AUTH_KEY_FILE`, rotations
//! (`server keys rotate`), and each instance's copy kept up with the database, so every
//! instance signs with the same key and publishes the same ones.

use crate::{
    auth::{
        jwt::{JwtKeys, LoadedKey},
        key_set::{self, KeyState},
        keys::{self, KeyError, Sealer},
    },
    clock::SharedClock,
    db::{
        changes::{self, Change},
        signing_keys::{self, SigningKeyRow},
        Db,
    },
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use ed25519_dalek::SigningKey;
use std::{path::Path, sync::Arc, time::Duration};

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// A key as `server keys list` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub kid: String,
    pub state: KeyState,
    pub created_at: i64,
    pub signs_from: i64,
}

fn row(key: &SigningKey, sealer: &Sealer, created_at: i64, signs_from: i64) -> SigningKeyRow {
    let public = key.verifying_key().to_bytes();
    let kid = keys::thumbprint(&public);
    SigningKeyRow {
        sealed_private_key: sealer.seal(&kid, key, &mut rand::rng()),
        kid,
        public_key: URL_SAFE_NO_PAD.encode(public),
        created_at,
        signs_from,
    }
}

/// On a database without keys, the key of `key_file` (generated when absent) becomes the
/// first, signing at once. Once the database has keys the file is not read again.
///
/// Two instances starting at once on an empty database import one key: the first to hold
/// the table; the other then finds it.
pub async fn import_first(
    db: &Db,
    sealer: &Sealer,
    key_file: &Path,
    now: i64,
) -> Result<(), KeysError> {
    let mut tx = db.begin_write().await?;
    signing_keys::hold_for_import(&mut tx).await?;
    if signing_keys::count(&mut *tx).await? > 0 {
        return Ok(());
    }
    let key = keys::load_or_create_signing_key(key_file, &mut rand::rng())?;
    let first = row(&key, sealer, now, 0);
    signing_keys::insert_first(&mut *tx, &first).await?;
    tx.commit().await?;
    tracing::info!(kid = %first.kid, file = %key_file.display(), "signing key imported");
    Ok(())
}

/// Adds a key, published at once, signing from `publish_delay` after `now`; the key it
/// replaces retires by itself once its last tokens have expired.
pub async fn rotate(
    db: &Db,
    sealer: &Sealer,
    now: i64,
    publish_delay: Duration,
) -> Result<KeyInfo, KeysError> {
    let key = keys::generate(&mut rand::rng());
    let delay = i64::try_from(publish_delay.as_secs()).unwrap_or(i64::MAX);
    let new = row(&key, sealer, now, now.saturating_add(delay));
    let mut tx = db.begin_write().await?;
    signing_keys::insert(&mut *tx, &new).await?;
    // The others would read it within a second anyway; this makes it at once.
    changes::announce(&mut *tx, db.backend(), &Change::Keys).await?;
    tx.commit().await?;
    tracing::info!(kid = %new.kid, signs_from = new.signs_from, "signing key added");
    Ok(KeyInfo {
        kid: new.kid,
        state: KeyState::Next,
        created_at: new.created_at,
        signs_from: new.signs_from,
    })
}

/// Every key and its state at `now`.
pub async fn list(db: &Db, now: i64, token_life: i64) -> Result<Vec<KeyInfo>, KeysError> {
    let rows = signing_keys::list(db.pool()).await?;
    let states = key_set::states(&versions_of(&rows), now, token_life);
    Ok(rows
        .into_iter()
        .zip(states)
        .map(|(r, state)| KeyInfo {
            kid: r.kid,
            state,
            created_at: r.created_at,
            signs_from: r.signs_from,
        })
        .collect())
}

fn versions_of(rows: &[SigningKeyRow]) -> Vec<(String, i64)> {
    rows.iter().map(|r| (r.kid.clone(), r.signs_from)).collect()
}

/// The keys not retired at `now`, opened, and the versions (`kid`, `signs_from`) of all
/// the database's keys they came from.
pub struct Loaded {
    pub keys: Vec<LoadedKey>,
    pub versions: Vec<(String, i64)>,
}

/// Reads and opens the keys. One that does not open is an error: this instance's
/// `AUTH_SECRET_FILE` is not the one the keys were sealed under.
pub async fn load(
    db: &Db,
    sealer: &Sealer,
    now: i64,
    token_life: i64,
) -> Result<Loaded, KeysError> {
    let rows = signing_keys::list(db.pool()).await?;
    let versions = versions_of(&rows);
    let states = key_set::states(&versions, now, token_life);
    let keys = rows
        .into_iter()
        .zip(states)
        .filter(|(_, state)| state.is_published())
        .map(|(r, _)| {
            Ok(LoadedKey {
                key: sealer.open(&r.kid, &r.sealed_private_key)?,
                signs_from: r.signs_from,
            })
        })
        .collect::<Result<_, KeyError>>()?;
    Ok(Loaded { keys, versions })
}

/// Takes the database's keys into `jwt` when they differ from `seen` (the versions it
/// holds): a key added by a rotation on any instance. Says whether they did.
pub async fn catch_up(
    db: &Db,
    sealer: &Sealer,
    jwt: &JwtKeys,
    seen: &mut Vec<(String, i64)>,
    now: i64,
) -> Result<bool, KeysError> {
    if signing_keys::versions(db.pool()).await? == *seen {
        return Ok(false);
    }
    let loaded = load(db, sealer, now, jwt.token_life()).await?;
    jwt.replace(loaded.keys);
    *seen = loaded.versions;
    Ok(true)
}

/// How often each instance reads the keys' versions (one small query): a key rotated on
/// any instance, or by `server keys rotate`, is in every instance's JWKS within this.
pub const CATCH_UP_EVERY: Duration = Duration::from_secs(1);

/// Keeps `jwt`, loaded from `seen`, up with the database until the task is aborted: every
/// [`CATCH_UP_EVERY`], and at once when `changed` is notified (another instance announced
/// a key).
pub async fn keep_up(
    db: Db,
    sealer: Arc<Sealer>,
    jwt: Arc<JwtKeys>,
    clock: SharedClock,
    mut seen: Vec<(String, i64)>,
    changed: Arc<tokio::sync::Notify>,
) {
    let mut ticker = tokio::time::interval(CATCH_UP_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = changed.notified() => {}
        }
        if let Err(e) = catch_up(&db, &sealer, &jwt, &mut seen, clock.unix()).await {
            tracing::warn!(error = %e, "reading the signing keys failed");
        }
    }
}
