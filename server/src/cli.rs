//! The server's command line: serving (the default) and the admin commands. Admins are
//! never created by registration, only here, by whoever runs the server.
//!
//! ```text
//! server                                        serve (settings from the environment)
//! server admin create --email E --name N        a new admin; the password is read from
//!                                               stdin, or generated and printed once
//! server admin promote --email E                make an existing person an admin
//! ```

use crate::{
    auth::{password::Passwords, tokens, validate},
    config::Settings,
    db::{
        audit,
        users::{self, InsertUserError, NewUser},
        Db,
    },
};
use app::api::Role;
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
    /// A developer tool for `cargo xtask bench`.
    BenchArgon2,
}

pub const USAGE: &str =
    "usage: server [admin create --email EMAIL --name NAME | admin promote --email EMAIL]";

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
        ["admin", "create", ..] => Ok(Command::AdminCreate {
            email: flag("--email")?,
            name: flag("--name")?,
        }),
        ["admin", "promote", ..] => Ok(Command::AdminPromote {
            email: flag("--email")?,
        }),
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
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Password(#[from] crate::auth::password::PasswordError),
}

async fn database(settings: &Settings) -> Result<Db, CliError> {
    let db = Db::connect(settings.database_url.expose_secret()).await?;
    db.migrate().await?;
    Ok(db)
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
    let mut errors = validate::FieldErrors::new();
    let email = validate::email(email, &mut errors);
    let name = validate::name(name, &mut errors);
    validate::password(&password, &mut errors);
    if !errors.is_empty() {
        let why: Vec<String> = errors.iter().map(|(f, e)| format!("{f}: {e}")).collect();
        return Err(CliError::Invalid(why.join("; ")));
    }
    let db = database(settings).await?;
    let secret = SecretString::from(password.clone());
    let hash = Passwords::for_this_machine()?.hash(&secret).await?;
    let id = uuid::Uuid::new_v4().to_string();
    users::insert(
        db.pool(),
        NewUser {
            id: &id,
            email: &email,
            name: &name,
            password_hash: &hash,
            role: Role::Admin.as_str(),
            now,
        },
    )
    .await
    .map_err(|e| match e {
        InsertUserError::EmailTaken => CliError::EmailTaken,
        InsertUserError::Db(e) => CliError::Sql(e),
    })?;
    audit::record(
        db.pool(),
        audit::Event {
            action: audit::Action::AdminCreated,
            actor_id: None,
            subject_id: Some(&id),
            ip: None,
            detail: Some("created by the command line"),
            now,
        },
    )
    .await?;
    db.close().await;
    Ok(Created {
        id,
        generated_password: generated.then_some(password),
    })
}

/// Makes an existing person an admin.
pub async fn admin_promote(settings: &Settings, email: &str, now: i64) -> Result<String, CliError> {
    let db = database(settings).await?;
    let user = users::find_by_email(db.pool(), email)
        .await?
        .ok_or(CliError::UnknownEmail)?;
    users::set_role(db.pool(), &user.id, Role::Admin.as_str(), now).await?;
    audit::record(
        db.pool(),
        audit::Event {
            action: audit::Action::AccessChanged,
            actor_id: None,
            subject_id: Some(&user.id),
            ip: None,
            detail: Some("promoted to admin by the command line"),
            now,
        },
    )
    .await?;
    db.close().await;
    Ok(user.id)
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
        assert!(parse(&args("frobnicate")).is_err());
    }
}
