//! The server's command line: serving (the default) and the admin commands. Admins are
//! never created by registration, only here, by whoever runs the server.
//!
//! ```text
//! server                                        serve (settings from the environment)
//! server admin create --email E --name N        a new admin; the password is read from
//!                                               stdin, or generated and printed once
//! server admin promote --email E                make an existing person an admin
//! server keys rotate                            add a signing key (published now, signing
//!                                               after AUTH_KEY_PUBLISH_SECS)
//! server keys list                              every signing key's kid and state
//! server openapi                                the OpenAPI document (docs/openapi.json)
//! ```

use crate::{
    auth::{keys, tokens},
    config::Settings,
    db::Db,
    error::ApiError,
    service::{
        accounts,
        keys::{self as signing_keys, KeyInfo, KeysError},
        Core,
    },
};
use secrecy::{ExposeSecret, SecretString};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Serve,
    AdminCreate {
        email: String,
        name: String,
    },
    AdminPromote {
        email: String,
    },
    KeysRotate,
    KeysList,
    /// Prints the OpenAPI document; needs no settings.
    OpenApi,
    /// A developer tool for `cargo xtask bench`.
    BenchArgon2,
    /// A developer tool for `cargo xtask bench`: the database's own rotations/s
    /// (`rotation_ceiling`), on `DATABASE_URL`.
    BenchRotation,
}

pub const USAGE: &str = "usage: server [admin create --email EMAIL --name NAME | \
     admin promote --email EMAIL | keys rotate | keys list | openapi]";

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let flag = |name: &str| -> Result<String, String> {
        let at = args
            .iter()
            .position(|a| a == name)
            .ok_or_else(|| format!("missing {name}"))?;
        args.get(at + 1)
            .filter(|v| !v.starts_with("--"))
            .cloned()
            .ok_or_else(|| format!("{name} needs a value"))
    };
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => Ok(Command::Serve),
        ["bench-argon2"] => Ok(Command::BenchArgon2),
        ["bench-rotation"] => Ok(Command::BenchRotation),
        ["admin", "create", ..] => Ok(Command::AdminCreate {
            email: flag("--email")?,
            name: flag("--name")?,
        }),
        ["admin", "promote", ..] => Ok(Command::AdminPromote {
            email: flag("--email")?,
        }),
        ["keys", "rotate"] => Ok(Command::KeysRotate),
        ["keys", "list"] => Ok(Command::KeysList),
        ["openapi"] => Ok(Command::OpenApi),
        _ => Err(USAGE.to_string()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Invalid(String),
    #[error("an account with this email already exists (use `admin promote`)")]
    EmailTaken,
    #[error("no account has this email")]
    UnknownEmail,
    #[error(
        "this email address is not verified, so whoever registered it may not own it: \
         have the person verify it first, or use `admin create` for a new admin"
    )]
    Unverified,
    #[error(transparent)]
    Startup(#[from] crate::StartupError),
    #[error(transparent)]
    Keys(#[from] KeysError),
    #[error("{0}")]
    Failed(ApiError),
}

impl From<ApiError> for CliError {
    fn from(e: ApiError) -> CliError {
        match e {
            ApiError::EmailTaken => CliError::EmailTaken,
            ApiError::NotFound => CliError::UnknownEmail,
            ApiError::EmailUnverified => CliError::Unverified,
            ApiError::Validation(fields) => CliError::Invalid(
                fields
                    .iter()
                    .map(|(f, e)| format!("{f}: {e}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            other => CliError::Failed(other),
        }
    }
}

/// The database the settings name, migrated, and the server secret.
async fn database_and_secret(settings: &Settings) -> Result<(Db, [u8; 32]), CliError> {
    let db = Db::connect(settings.database_url.expose_secret())
        .await
        .map_err(crate::StartupError::from)?;
    db.migrate().await.map_err(crate::StartupError::from)?;
    let secret = keys::load_or_create_secret(&settings.auth.secret_file, &mut rand::rng())
        .map_err(crate::StartupError::from)?;
    Ok((db, secret))
}

/// The services, on the database and secret the settings name, as the server has them.
async fn core(settings: &Settings) -> Result<Core, CliError> {
    let (db, secret) = database_and_secret(settings).await?;
    Ok(Core::new(settings, db, secret)?)
}

/// What `admin create` did: the new id, and the password when it was generated.
pub struct Created {
    pub id: String,
    pub generated_password: Option<String>,
}

/// Creates an admin. `password` is what stdin gave (a trailing newline removed); none or
/// empty means: generate one.
pub async fn admin_create(
    settings: &Settings,
    email: &str,
    name: &str,
    password: Option<String>,
    now: i64,
) -> Result<Created, CliError> {
    let (password, generated) = match password.filter(|p| !p.is_empty()) {
        Some(p) => (p, false),
        None => (tokens::random_token(&mut rand::rng()), true),
    };
    let core = core(settings).await?;
    // Validated by the service, as a registration is.
    let account = accounts::NewAccount {
        email: email.to_string(),
        name: name.to_string(),
        password: SecretString::from(password.clone()),
    };
    let created = accounts::create_admin(&core, account, now).await;
    core.db.close().await;
    Ok(Created {
        id: created?.id,
        generated_password: generated.then_some(password),
    })
}

/// Makes an existing person with a verified address an admin.
pub async fn admin_promote(settings: &Settings, email: &str, now: i64) -> Result<String, CliError> {
    let core = core(settings).await?;
    let promoted = accounts::promote(&core, email, now).await;
    core.db.close().await;
    Ok(promoted?.id)
}

/// The database the settings name, migrated, and what opens its signing keys.
async fn key_store(settings: &Settings) -> Result<(Db, keys::Sealer), CliError> {
    let (db, secret) = database_and_secret(settings).await?;
    Ok((db, keys::Sealer::new(&secret)))
}

fn token_life(settings: &Settings) -> i64 {
    crate::auth::jwt::token_life(crate::config::unix_secs(settings.auth.access_ttl))
}

/// Adds a signing key, published at once and signing `AUTH_KEY_PUBLISH_SECS` later. The
/// keys already there must open with this secret: a key sealed under another would be
/// published by no instance.
pub async fn keys_rotate(settings: &Settings, now: i64) -> Result<KeyInfo, CliError> {
    let (db, sealer) = key_store(settings).await?;
    let rotated = async {
        signing_keys::import_first(&db, &sealer, &settings.auth.key_file, now).await?;
        signing_keys::load(&db, &sealer, now, token_life(settings)).await?;
        signing_keys::rotate(&db, &sealer, now, settings.auth.key_publish_delay).await
    }
    .await;
    db.close().await;
    Ok(rotated?)
}

/// The database's time now, in Unix seconds: what `keys rotate` and `keys list` judge by,
/// as the servers do (see `clock::DatabaseClock`), whatever this machine's clock says.
pub async fn database_now(settings: &Settings) -> Result<i64, CliError> {
    let db = Db::connect(settings.database_url.expose_secret())
        .await
        .map_err(crate::StartupError::from)?;
    let now = crate::db::time_ms(db.pool(), db.backend()).await;
    db.close().await;
    Ok(now.map_err(crate::StartupError::DatabaseTime)? / 1000)
}

/// Every signing key and its state now.
pub async fn keys_list(settings: &Settings, now: i64) -> Result<Vec<KeyInfo>, CliError> {
    let (db, _) = key_store(settings).await?;
    let listed = signing_keys::list(&db, now, token_life(settings)).await;
    db.close().await;
    Ok(listed?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn commands_parse() {
        assert_eq!(parse(&[]), Ok(Command::Serve));
        assert_eq!(
            parse(&args("admin create --email a@b.co --name Ada")),
            Ok(Command::AdminCreate {
                email: "a@b.co".into(),
                name: "Ada".into()
            })
        );
        assert_eq!(
            parse(&args("admin promote --email a@b.co")),
            Ok(Command::AdminPromote {
                email: "a@b.co".into()
            })
        );
        assert!(parse(&args("admin create --email a@b.co")).is_err());
        assert!(parse(&args("admin create --email --name Ada")).is_err());
        assert_eq!(parse(&args("keys rotate")), Ok(Command::KeysRotate));
        assert_eq!(parse(&args("keys list")), Ok(Command::KeysList));
        assert!(parse(&args("keys")).is_err());
        assert!(parse(&args("frobnicate")).is_err());
    }
}
