//! One typed `Settings`, read once at start from the environment (and `.env`).
//! Every variable of the spec's configuration table lives here; a value that cannot be
//! parsed stops start-up with a message naming the variable.

use crate::auth::csrf::parse_origin;
use secrecy::SecretString;
use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// Every setting, in parts: each part is read by its own function.
#[derive(Clone, Debug)]
pub struct Settings {
    /// May carry a password, hence secret.
    pub database_url: SecretString,
    pub http: HttpSettings,
    pub auth: AuthSettings,
    pub mail: MailSettings,
    /// Identity providers people may sign in with (none by default).
    pub oidc: Vec<ProviderSettings>,
    /// Audit entries older than this are deleted by the periodic pruning.
    pub audit_retention: Duration,
    pub rust_log: String,
    /// `LOG_FORMAT`: how each log line is written.
    pub log_format: LogFormat,
    /// `METRICS_ADDR`: where Prometheus metrics are served, on a listener of their own
    /// (none when unset), so they never reach the public address.
    pub metrics_addr: Option<SocketAddr>,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// For people: one line an event, its spans' fields inline.
    Text,
    /// For log collectors: one JSON object a line, with the fields of the event's spans
    /// (so the request id) in it.
    Json,
}

/// Where the server listens and how it is reached.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    pub site_addr: SocketAddr,
    /// Origin-only form (`scheme://host[:port]`, no trailing slash).
    pub public_url: String,
    pub cookie_secure: bool,
    /// Normalised origins (`scheme://host[:port]`).
    pub allowed_origins: Vec<String>,
    pub limits: HttpLimits,
    /// `TRUSTED_PROXIES`: peers whose `X-Forwarded-For` names the client (see `proxies`).
    pub trusted_proxies: Vec<crate::proxies::Cidr>,
}

/// Tokens, sessions, keys and the rules of signing in.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub session_max: Duration,
    pub refresh_grace: Duration,
    pub issuer: String,
    pub audience: String,
    pub key_file: PathBuf,
    /// How long a key added by `server keys rotate` is published before it signs, so
    /// resource servers caching the JWKS (5 minutes) know it before its first token.
    pub key_publish_delay: Duration,
    pub secret_file: PathBuf,
    pub rate_limit_enabled: bool,
    /// Unverified people may sign in but other API routes answer 403 `email_unverified`.
    pub require_verified_email: bool,
}

/// Outgoing mail.
#[derive(Clone, Debug)]
pub struct MailSettings {
    /// Where mail goes: `SMTP_URL`, or the log (see [`MailTransport`]).
    pub transport: MailTransport,
    /// The `From` of every message, e.g. `Example <no-reply@example.com>`.
    pub from: lettre::message::Mailbox,
}

/// One OpenID Connect provider (`OIDC_PROVIDERS` names them; `OIDC_<ID>_*` describe each).
#[derive(Clone, Debug)]
pub struct ProviderSettings {
    /// Lowercase letters, digits and `-`: in paths (`/api/auth/oidc/<id>/…`) and sessions.
    pub id: String,
    /// Exactly as the provider writes it in its ID tokens (no trailing slash added).
    pub issuer: String,
    pub client_id: String,
    /// `None`: a public client, proving itself by PKCE alone.
    pub client_secret: Option<SecretString>,
    /// The label of its button ("Continue with <name>").
    pub name: String,
    pub scopes: Vec<String>,
}

/// Limits of the HTTP server, so slow or many clients cannot hold it (see `serve.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// A connection that has not sent complete request headers within this is closed
    /// (slowloris); so is a keep-alive connection idle this long, and one whose client
    /// has taken no byte of its answers this long.
    pub header_timeout: Duration,
    /// A request with no response headers within this is answered 503 `unavailable`.
    pub request_timeout: Duration,
    /// Connections served at once; further ones wait in the kernel's accept queue.
    pub max_connections: u32,
}

/// How mail leaves the server.
#[derive(Clone, Debug)]
pub enum MailTransport {
    /// `smtp://…` or `smtps://…`; may carry a password, hence secret.
    Smtp(SecretString),
    /// Each message written in full to the log. Chosen when `SMTP_URL` is unset and
    /// `PUBLIC_URL` is a loopback address (development), or anywhere with `SMTP_URL=log`.
    /// Anywhere else it would put live reset links and codes into production logs.
    Log,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration: {var}: {reason}")]
pub struct ConfigError {
    pub var: String,
    pub reason: String,
}

/// The longest any seconds setting may be: ten years. Longer is no lifetime or time limit
/// anyone means, and far larger values break the arithmetic they feed: hyper and tokio add
/// them to an `Instant` (which panics on overflow), and the lifetimes become Unix seconds
/// in an `i64`.
pub const MAX_SECS: u64 = 315_360_000;

/// The longest audit retention, a million years: in effect "keep for ever", still a number
/// of seconds that fits an `i64`.
const MAX_DAYS: u64 = 365_000_000;

fn err(var: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var: var.into(),
        reason: reason.into(),
    }
}

impl Settings {
    /// Reads the process environment, after loading `.env` when one is present.
    pub fn from_env() -> Result<Settings, ConfigError> {
        if let Err(e) = dotenvy::dotenv() {
            if !e.not_found() {
                return Err(err(".env", e.to_string()));
            }
        }
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    /// Parses settings from any lookup, so tests need not touch the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let vars = Vars(&get);
        let database_url = vars
            .get("DATABASE_URL")
            .unwrap_or_else(|| "sqlite://data/app.db".into());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(err(
                "DATABASE_URL",
                "must start with sqlite: or postgres://",
            ));
        }
        let http = http_settings(&vars)?;
        let auth = auth_settings(&vars, &http.public_url)?;
        let mail = mail_settings(&vars, &http.public_url)?;
        let oidc = oidc_settings(&vars)?;
        let audit_retention_days = vars.number("AUDIT_RETENTION_DAYS", 365, 1, MAX_DAYS, "days")?;
        let audit_retention = Duration::from_secs(audit_retention_days * 86_400);
        let rust_log = vars.get("RUST_LOG").unwrap_or_else(|| "info".into());
        tracing_subscriber::EnvFilter::try_new(&rust_log)
            .map_err(|e| err("RUST_LOG", e.to_string()))?;
        let log_format = match vars
            .get("LOG_FORMAT")
            .map(|v| v.trim().to_ascii_lowercase())
        {
            None => LogFormat::Text,
            Some(v) if v == "text" => LogFormat::Text,
            Some(v) if v == "json" => LogFormat::Json,
            Some(v) => {
                return Err(err(
                    "LOG_FORMAT",
                    format!("expected text or json, got {v:?}"),
                ))
            }
        };
        let metrics_addr = vars
            .get("METRICS_ADDR")
            .map(|v| {
                v.trim()
                    .parse()
                    .map_err(|_| err("METRICS_ADDR", "expected an address such as 127.0.0.1:9100"))
            })
            .transpose()?;
        Ok(Settings {
            database_url: SecretString::from(database_url),
            http,
            auth,
            mail,
            oidc,
            audit_retention,
            rust_log,
            log_format,
            metrics_addr,
        })
    }

    /// The lifetimes of sessions and their refresh tokens, as the services use them.
    pub fn lifetimes(&self) -> crate::service::sessions::Lifetimes {
        crate::service::sessions::Lifetimes {
            policy: crate::auth::refresh::Policy {
                refresh_ttl: unix_secs(self.auth.refresh_ttl),
                grace: unix_secs(self.auth.refresh_grace),
            },
            session_max: unix_secs(self.auth.session_max),
        }
    }
}

/// A setting's duration as Unix seconds. Settings are at most [`MAX_SECS`], so this never
/// saturates; were one larger, it would stay a large positive number rather than wrap
/// negative as `as i64` does.
pub fn unix_secs(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// The environment (or a test's map), with blank values read as unset.
struct Vars<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Vars<'_> {
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    /// A whole number from `min` to `max` (`unit` says what it counts, for the message).
    fn number(
        &self,
        name: &'static str,
        default: u64,
        min: u64,
        max: u64,
        unit: &str,
    ) -> Result<u64, ConfigError> {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        let n: u64 = v.trim().parse().map_err(|_| {
            err(
                name,
                format!("expected a whole number of {unit}, got {v:?}"),
            )
        })?;
        if n < min {
            return Err(err(name, format!("must be at least {min}")));
        }
        if n > max {
            return Err(err(name, format!("must be at most {max} {unit}")));
        }
        Ok(n)
    }

    /// Seconds, up to [`MAX_SECS`].
    fn secs(&self, name: &'static str, default: u64) -> Result<Duration, ConfigError> {
        self.number(name, default, 0, MAX_SECS, "seconds")
            .map(Duration::from_secs)
    }

    /// Seconds, at least one.
    fn positive_secs(&self, name: &'static str, default: u64) -> Result<Duration, ConfigError> {
        self.number(name, default, 1, MAX_SECS, "seconds")
            .map(Duration::from_secs)
    }

    fn bool(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        parse_bool(name, self.get(name), default)
    }
}

fn http_settings(vars: &Vars) -> Result<HttpSettings, ConfigError> {
    let site_addr: SocketAddr = vars
        .get("LEPTOS_SITE_ADDR")
        .unwrap_or_else(|| "127.0.0.1:3000".into())
        .trim()
        .parse()
        .map_err(|_| {
            err(
                "LEPTOS_SITE_ADDR",
                "expected an address such as 127.0.0.1:3000",
            )
        })?;
    let public_url = match vars.get("PUBLIC_URL") {
        Some(v) => parse_origin(&v).map_err(|reason| err("PUBLIC_URL", reason))?,
        None => format!("http://{site_addr}"),
    };
    let allowed_origins = match vars.get("ALLOWED_ORIGINS") {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|o| {
                parse_origin(o).map_err(|reason| err("ALLOWED_ORIGINS", format!("{o:?}: {reason}")))
            })
            .collect::<Result<_, _>>()?,
    };
    let trusted_proxies = match vars.get("TRUSTED_PROXIES") {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|c| c.parse().map_err(|reason| err("TRUSTED_PROXIES", reason)))
            .collect::<Result<_, _>>()?,
    };
    let limits = HttpLimits {
        header_timeout: vars.positive_secs("HTTP_HEADER_TIMEOUT_SECS", 10)?,
        request_timeout: vars.positive_secs("HTTP_REQUEST_TIMEOUT_SECS", 30)?,
        max_connections: u32::try_from(vars.number(
            "HTTP_MAX_CONNECTIONS",
            1024,
            1,
            u32::MAX.into(),
            "connections",
        )?)
        // The bound above makes this the number itself.
        .unwrap_or(u32::MAX),
    };
    Ok(HttpSettings {
        site_addr,
        public_url,
        cookie_secure: vars.bool("COOKIE_SECURE", true)?,
        allowed_origins,
        limits,
        trusted_proxies,
    })
}

fn auth_settings(vars: &Vars, public_url: &str) -> Result<AuthSettings, ConfigError> {
    let access_ttl = vars.positive_secs("AUTH_ACCESS_TTL_SECS", 900)?;
    let refresh_ttl = vars.positive_secs("AUTH_REFRESH_TTL_SECS", 1_209_600)?;
    let session_max = vars.secs("AUTH_SESSION_MAX_SECS", 7_776_000)?;
    let refresh_grace = vars.secs("AUTH_REFRESH_GRACE_SECS", 10)?;
    if session_max < refresh_ttl {
        return Err(err(
            "AUTH_SESSION_MAX_SECS",
            "must be at least AUTH_REFRESH_TTL_SECS",
        ));
    }
    if refresh_grace >= refresh_ttl {
        return Err(err(
            "AUTH_REFRESH_GRACE_SECS",
            "must be shorter than AUTH_REFRESH_TTL_SECS",
        ));
    }
    let file =
        |name: &str, default: &str| PathBuf::from(vars.get(name).unwrap_or_else(|| default.into()));
    Ok(AuthSettings {
        access_ttl,
        refresh_ttl,
        session_max,
        refresh_grace,
        issuer: vars.get("AUTH_ISSUER").unwrap_or_else(|| public_url.into()),
        audience: vars
            .get("AUTH_AUDIENCE")
            .unwrap_or_else(|| public_url.into()),
        key_file: file("AUTH_KEY_FILE", "data/jwt-ed25519.pem"),
        key_publish_delay: vars.secs("AUTH_KEY_PUBLISH_SECS", 600)?,
        secret_file: file("AUTH_SECRET_FILE", "data/secret.key"),
        rate_limit_enabled: vars.bool("RATE_LIMIT_ENABLED", true)?,
        require_verified_email: vars.bool("REQUIRE_VERIFIED_EMAIL", false)?,
    })
}

/// `OIDC_PROVIDERS` and, for each id, its `OIDC_<ID>_*` variables.
fn oidc_settings(vars: &Vars) -> Result<Vec<ProviderSettings>, ConfigError> {
    let Some(list) = vars.get("OIDC_PROVIDERS") else {
        return Ok(Vec::new());
    };
    // The list itself first, so its own mistakes are named before any provider's.
    let ids: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .collect();
    for (n, id) in ids.iter().enumerate() {
        let valid = id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid || id.len() > 40 {
            return Err(err(
                "OIDC_PROVIDERS",
                format!("{id:?}: ids are lowercase letters, digits and '-', at most 40"),
            ));
        }
        if *id == "password" || *id == "passkey" {
            // Sessions name the provider they began with, or `password`, or `passkey`.
            return Err(err("OIDC_PROVIDERS", format!("{id:?} is reserved")));
        }
        if ids[..n].contains(id) {
            return Err(err("OIDC_PROVIDERS", format!("{id:?} is listed twice")));
        }
    }
    let mut providers: Vec<ProviderSettings> = Vec::new();
    for id in ids {
        let var = |suffix: &str| {
            format!(
                "OIDC_{}_{suffix}",
                id.to_ascii_uppercase().replace('-', "_")
            )
        };
        let required = |suffix: &str| {
            let name = var(suffix);
            vars.get(&name)
                .map(|v| v.trim().to_string())
                .ok_or_else(|| err(name.clone(), format!("required for the provider {id:?}")))
        };
        let issuer = required("ISSUER")?;
        let parsed = issuer
            .parse::<url_check::Url>()
            .map_err(|e| err(var("ISSUER"), e))?;
        if !(parsed.https || parsed.loopback) {
            return Err(err(
                var("ISSUER"),
                "must be an https:// URL (http:// only for a loopback address, in tests)",
            ));
        }
        let client_id = required("CLIENT_ID")?;
        let client_secret = match (
            vars.get(&var("CLIENT_SECRET")),
            vars.get(&var("CLIENT_SECRET_FILE")),
        ) {
            (Some(_), Some(_)) => {
                return Err(err(
                    var("CLIENT_SECRET"),
                    format!("set it or {}, not both", var("CLIENT_SECRET_FILE")),
                ))
            }
            (Some(secret), None) => Some(SecretString::from(secret.trim().to_string())),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path.trim()).map_err(|e| {
                    err(
                        var("CLIENT_SECRET_FILE"),
                        format!("cannot read {path:?}: {e}"),
                    )
                })?;
                Some(SecretString::from(text.trim().to_string()))
            }
            (None, None) => None,
        };
        let name = vars.get(&var("NAME")).map_or_else(
            || {
                let mut chars = id.chars();
                chars
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            },
            |n| n.trim().to_string(),
        );
        let scopes: Vec<String> = vars
            .get(&var("SCOPES"))
            .unwrap_or_else(|| "openid email profile".into())
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if !scopes.iter().any(|s| s == "openid") {
            return Err(err(var("SCOPES"), "must include openid"));
        }
        providers.push(ProviderSettings {
            id: id.to_string(),
            issuer,
            client_id,
            client_secret,
            name,
            scopes,
        });
    }
    Ok(providers)
}

/// Just enough URL parsing for the issuer rule, without a URL crate of our own.
mod url_check {
    pub struct Url {
        pub https: bool,
        pub loopback: bool,
    }

    impl std::str::FromStr for Url {
        type Err = String;

        fn from_str(text: &str) -> Result<Url, String> {
            let (https, rest) = if let Some(rest) = text.strip_prefix("https://") {
                (true, rest)
            } else if let Some(rest) = text.strip_prefix("http://") {
                (false, rest)
            } else {
                return Err(format!("{text:?} is not an http(s) URL"));
            };
            let authority = rest.split('/').next().unwrap_or_default();
            if authority.is_empty() {
                return Err(format!("{text:?} has no host"));
            }
            Ok(Url {
                https,
                loopback: super::is_loopback_host(super::host_of(authority)),
            })
        }
    }
}

fn mail_settings(vars: &Vars, public_url: &str) -> Result<MailSettings, ConfigError> {
    let transport = match vars.get("SMTP_URL") {
        Some(v) if v.trim().eq_ignore_ascii_case("log") => MailTransport::Log,
        Some(url) => {
            let url = url.trim().to_string();
            if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                return Err(err(
                    "SMTP_URL",
                    "must start with smtp:// or smtps://, or be log",
                ));
            }
            lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(&url)
                .map_err(|e| err("SMTP_URL", e.to_string()))?;
            refuse_cleartext_smtp(&url)?;
            MailTransport::Smtp(SecretString::from(url))
        }
        None if is_loopback_origin(public_url) => MailTransport::Log,
        None => {
            return Err(err(
                "SMTP_URL",
                format!(
                    "unset while PUBLIC_URL ({public_url}) is not a loopback address, so \
                     reset links and codes would only reach the log; set SMTP_URL to your \
                     mail server (smtps://user:pass@host:465), or SMTP_URL=log to write mail \
                     to the log on purpose"
                ),
            ))
        }
    };
    let from = vars
        .get("MAIL_FROM")
        .unwrap_or_else(|| "JWT Auth <no-reply@localhost>".into())
        .trim()
        .parse()
        .map_err(|_| {
            err(
                "MAIL_FROM",
                "expected an address such as Example <no-reply@example.com>",
            )
        })?;
    Ok(MailSettings { transport, from })
}

fn parse_bool(
    var: &'static str,
    value: Option<String>,
    default: bool,
) -> Result<bool, ConfigError> {
    match value.as_deref().map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) => match v.as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(err(var, format!("expected true or false, got {v:?}"))),
        },
    }
}

/// Refuses a plain `smtp://` URL (no TLS, or TLS only if the server offers it) to another
/// machine: the password (SMTP `AUTH PLAIN`) and every code and reset link would cross the
/// network in cleartext, readable and changeable on the way. A relay on this machine
/// (maildev in the tests) is fine.
///
/// Read as lettre reads it (the `url` crate): the host follows the authority's last `@`;
/// TLS is required when the first `tls` parameter is `required`. Anything this reads
/// differently (a percent-encoded or `+` query) counts as not required, so a doubt refuses.
fn refuse_cleartext_smtp(url: &str) -> Result<(), ConfigError> {
    let Some(rest) = url.strip_prefix("smtp://") else {
        // smtps://: TLS from the first byte.
        return Ok(());
    };
    let (before_fragment, _) = rest.split_once('#').unwrap_or((rest, ""));
    let authority_end = before_fragment
        .find(['/', '?'])
        .unwrap_or(before_fragment.len());
    let authority = &before_fragment[..authority_end];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let query = before_fragment
        .split_once('?')
        .map_or("", |(_, query)| query);
    let tls_required = !query.contains(['%', '+'])
        && query
            .split('&')
            .find_map(|pair| pair.strip_prefix("tls="))
            .is_some_and(|value| value == "required");
    if tls_required || is_loopback_host(host_of(host_port)) {
        return Ok(());
    }
    Err(err(
        "SMTP_URL",
        format!(
            "plain smtp:// to {host} would send the SMTP password and every code and reset \
             link unencrypted; use smtps://user:pass@{host}:465 (TLS), or add ?tls=required \
             (STARTTLS, e.g. smtp://user:pass@{host}:587?tls=required). Plain smtp:// is for \
             a relay on this machine (localhost, 127.0.0.0/8, ::1)",
            host = host_of(host_port),
        ),
    ))
}

/// The host of `host[:port]` or `[v6][:port]`.
fn host_of(host_port: &str) -> &str {
    match host_port.strip_prefix('[') {
        Some(inner) => inner.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    }
}

/// True when `host` names this machine: `localhost`, 127.0.0.0/8 or `::1`.
fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// True when `origin` (as [`parse_origin`] makes it, so lower case) names this machine.
fn is_loopback_origin(origin: &str) -> bool {
    let authority = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    is_loopback_host(host_of(authority))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn identity_providers_are_read_per_id() {
        let dir = tempfile::tempdir().unwrap();
        let secret_file = dir.path().join("corp-secret");
        std::fs::write(&secret_file, "from-a-file\n").unwrap();
        let secret_path = secret_file.display().to_string();
        let s = settings(&[
            ("OIDC_PROVIDERS", " google , corp-sso "),
            ("OIDC_GOOGLE_ISSUER", "https://accounts.google.com"),
            ("OIDC_GOOGLE_CLIENT_ID", "g-client"),
            ("OIDC_GOOGLE_CLIENT_SECRET", "g-secret"),
            ("OIDC_GOOGLE_NAME", "Google"),
            (
                "OIDC_CORP_SSO_ISSUER",
                "https://sso.example.com/realms/corp",
            ),
            ("OIDC_CORP_SSO_CLIENT_ID", "corp"),
            ("OIDC_CORP_SSO_CLIENT_SECRET_FILE", &secret_path),
            ("OIDC_CORP_SSO_SCOPES", "openid email"),
        ])
        .unwrap();
        assert_eq!(s.oidc.len(), 2);
        let google = &s.oidc[0];
        assert_eq!(google.id, "google");
        assert_eq!(google.issuer, "https://accounts.google.com");
        assert_eq!(google.client_id, "g-client");
        assert_eq!(
            google.client_secret.as_ref().unwrap().expose_secret(),
            "g-secret"
        );
        assert_eq!(google.name, "Google");
        assert_eq!(google.scopes, ["openid", "email", "profile"]);
        let corp = &s.oidc[1];
        assert_eq!(corp.id, "corp-sso");
        assert_eq!(corp.name, "Corp-sso");
        assert_eq!(
            corp.client_secret.as_ref().unwrap().expose_secret(),
            "from-a-file"
        );
        assert_eq!(corp.scopes, ["openid", "email"]);
        // None configured: none.
        assert!(settings(&[]).unwrap().oidc.is_empty());
    }

    #[test]
    fn identity_provider_mistakes_stop_start_up_naming_the_variable() {
        let base = [("OIDC_PROVIDERS", "corp")];
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("OIDC_PROVIDERS", "Corp")], "OIDC_PROVIDERS"),
            (&[("OIDC_PROVIDERS", "a,a")], "OIDC_PROVIDERS"),
            (&[("OIDC_PROVIDERS", "password")], "OIDC_PROVIDERS"),
            (&[("OIDC_PROVIDERS", "passkey")], "OIDC_PROVIDERS"),
            (&[("OIDC_CORP_CLIENT_ID", "c")], "OIDC_CORP_ISSUER"),
            (
                &[("OIDC_CORP_ISSUER", "https://sso.example.com")],
                "OIDC_CORP_CLIENT_ID",
            ),
            (
                &[
                    ("OIDC_CORP_ISSUER", "http://sso.example.com"),
                    ("OIDC_CORP_CLIENT_ID", "c"),
                ],
                "OIDC_CORP_ISSUER",
            ),
            (
                &[
                    ("OIDC_CORP_ISSUER", "https://sso.example.com"),
                    ("OIDC_CORP_CLIENT_ID", "c"),
                    ("OIDC_CORP_SCOPES", "email"),
                ],
                "OIDC_CORP_SCOPES",
            ),
            (
                &[
                    ("OIDC_CORP_ISSUER", "https://sso.example.com"),
                    ("OIDC_CORP_CLIENT_ID", "c"),
                    ("OIDC_CORP_CLIENT_SECRET", "s"),
                    ("OIDC_CORP_CLIENT_SECRET_FILE", "/nonexistent"),
                ],
                "OIDC_CORP_CLIENT_SECRET",
            ),
            (
                &[
                    ("OIDC_CORP_ISSUER", "https://sso.example.com"),
                    ("OIDC_CORP_CLIENT_ID", "c"),
                    ("OIDC_CORP_CLIENT_SECRET_FILE", "/nonexistent/secret"),
                ],
                "OIDC_CORP_CLIENT_SECRET_FILE",
            ),
        ];
        for (vars, var) in cases {
            let mut all: Vec<(&str, &str)> = base.to_vec();
            all.extend_from_slice(vars);
            let e = settings(&all).expect_err(&format!("{vars:?}"));
            assert_eq!(e.var, *var, "{vars:?}: {e}");
        }
        // A loopback issuer may be plain http (the tests' provider).
        let s = settings(&[
            ("OIDC_PROVIDERS", "corp"),
            ("OIDC_CORP_ISSUER", "http://127.0.0.1:8080"),
            ("OIDC_CORP_CLIENT_ID", "c"),
        ])
        .unwrap();
        assert!(s.oidc[0].client_secret.is_none());
    }

    #[test]
    fn defaults_follow_the_spec() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.database_url.expose_secret(), "sqlite://data/app.db");
        assert_eq!(s.http.site_addr.to_string(), "127.0.0.1:3000");
        assert_eq!(s.auth.access_ttl, Duration::from_secs(900));
        assert_eq!(s.auth.refresh_ttl, Duration::from_secs(1_209_600));
        assert_eq!(s.auth.session_max, Duration::from_secs(7_776_000));
        assert_eq!(s.auth.refresh_grace, Duration::from_secs(10));
        assert_eq!(s.http.public_url, "http://127.0.0.1:3000");
        assert_eq!(s.auth.issuer, "http://127.0.0.1:3000");
        assert_eq!(s.auth.audience, "http://127.0.0.1:3000");
        assert_eq!(s.auth.key_file, PathBuf::from("data/jwt-ed25519.pem"));
        assert_eq!(s.auth.key_publish_delay, Duration::from_secs(600));
        assert_eq!(s.auth.secret_file, PathBuf::from("data/secret.key"));
        assert!(s.http.cookie_secure);
        assert!(s.http.allowed_origins.is_empty());
        assert!(s.auth.rate_limit_enabled);
        assert_eq!(s.rust_log, "info");
        assert_eq!(s.log_format, LogFormat::Text);
        assert_eq!(s.metrics_addr, None, "no metrics listener unless asked for");
        assert!(
            matches!(s.mail.transport, MailTransport::Log),
            "mail goes to the log by default (a loopback PUBLIC_URL)"
        );
        assert_eq!(s.mail.from.email.to_string(), "no-reply@localhost");
        assert!(!s.auth.require_verified_email);
        assert_eq!(
            s.http.limits,
            HttpLimits {
                header_timeout: Duration::from_secs(10),
                request_timeout: Duration::from_secs(30),
                max_connections: 1024,
            }
        );
    }

    #[test]
    fn log_format_and_metrics_address_parse() {
        let s = settings(&[("LOG_FORMAT", " JSON "), ("METRICS_ADDR", "0.0.0.0:9100")]).unwrap();
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.metrics_addr, Some("0.0.0.0:9100".parse().unwrap()));
        let s = settings(&[("LOG_FORMAT", "text"), ("METRICS_ADDR", "[::1]:0")]).unwrap();
        assert_eq!(s.log_format, LogFormat::Text);
        assert_eq!(s.metrics_addr, Some("[::1]:0".parse().unwrap()));
        // Blank is unset, as for every variable.
        assert_eq!(
            settings(&[("METRICS_ADDR", " ")]).unwrap().metrics_addr,
            None
        );
    }

    #[test]
    fn audit_retention_is_counted_in_days() {
        assert_eq!(
            settings(&[]).unwrap().audit_retention,
            Duration::from_secs(365 * 86_400)
        );
        assert_eq!(
            settings(&[("AUDIT_RETENTION_DAYS", " 30 ")])
                .unwrap()
                .audit_retention,
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(
            settings(&[("AUDIT_RETENTION_DAYS", "1")])
                .unwrap()
                .audit_retention,
            Duration::from_secs(86_400)
        );
    }

    #[test]
    fn http_limits_parse() {
        let s = settings(&[
            ("HTTP_HEADER_TIMEOUT_SECS", "2"),
            ("HTTP_REQUEST_TIMEOUT_SECS", "5"),
            ("HTTP_MAX_CONNECTIONS", "8"),
        ])
        .unwrap();
        assert_eq!(s.http.limits.header_timeout, Duration::from_secs(2));
        assert_eq!(s.http.limits.request_timeout, Duration::from_secs(5));
        assert_eq!(s.http.limits.max_connections, 8);
    }

    #[test]
    fn seconds_go_up_to_ten_years() {
        let ten_years = "315360000";
        let s = settings(&[
            ("HTTP_HEADER_TIMEOUT_SECS", ten_years),
            ("HTTP_REQUEST_TIMEOUT_SECS", ten_years),
            ("AUTH_ACCESS_TTL_SECS", ten_years),
            ("AUTH_REFRESH_TTL_SECS", ten_years),
            ("AUTH_SESSION_MAX_SECS", ten_years),
        ])
        .unwrap();
        let ten_years = Duration::from_secs(315_360_000);
        assert_eq!(s.http.limits.header_timeout, ten_years);
        assert_eq!(s.http.limits.request_timeout, ten_years);
        assert_eq!(s.auth.access_ttl, ten_years);
        let lifetimes = s.lifetimes();
        assert_eq!(lifetimes.session_max, 315_360_000);
        assert_eq!(lifetimes.policy.refresh_ttl, 315_360_000);
        let e = settings(&[("HTTP_REQUEST_TIMEOUT_SECS", "315360001")]).unwrap_err();
        assert!(e.reason.contains("at most 315360000"), "{e}");
    }

    #[test]
    fn mail_settings_parse() {
        let s = settings(&[
            ("SMTP_URL", "smtp://user:pw@127.0.0.1:1025"),
            ("MAIL_FROM", "Example <hello@example.com>"),
            ("REQUIRE_VERIFIED_EMAIL", "true"),
        ])
        .unwrap();
        match &s.mail.transport {
            MailTransport::Smtp(url) => {
                assert_eq!(url.expose_secret(), "smtp://user:pw@127.0.0.1:1025")
            }
            MailTransport::Log => panic!("SMTP_URL is set"),
        }
        assert_eq!(s.mail.from.to_string(), "Example <hello@example.com>");
        assert!(s.auth.require_verified_email);
        assert!(
            !format!("{s:?}").contains("pw@"),
            "the SMTP password never shows in Debug"
        );
    }

    #[test]
    fn mail_to_the_log_needs_a_loopback_public_url_or_saying_so() {
        for public_url in [
            "http://127.0.0.1:3000",
            "http://127.8.9.10",
            "http://localhost:3000",
            "http://LocalHost",
            "http://[::1]:3000",
        ] {
            let s = settings(&[("PUBLIC_URL", public_url)]);
            assert!(s.is_ok(), "{public_url}: {:?}", s.err());
        }
        for public_url in [
            "https://auth.example.com",
            "http://10.0.0.5:3000",
            "http://0.0.0.0:3000",
            "http://[::2]",
            "http://localhost.example.com",
            "http://127.0.0.1.nip.io",
        ] {
            let e = settings(&[("PUBLIC_URL", public_url)])
                .expect_err(&format!("{public_url} without SMTP_URL must be refused"));
            assert_eq!(e.var, "SMTP_URL", "{public_url}");
            assert!(e.reason.contains("SMTP_URL=log"), "says how: {e}");
        }
        // The default PUBLIC_URL follows the listen address.
        let e = settings(&[("LEPTOS_SITE_ADDR", "0.0.0.0:3000")]).unwrap_err();
        assert_eq!(e.var, "SMTP_URL");

        // Either choice, said on purpose, is taken anywhere.
        for log in ["log", " LOG "] {
            let s = settings(&[
                ("PUBLIC_URL", "https://auth.example.com"),
                ("SMTP_URL", log),
            ])
            .unwrap();
            assert!(matches!(s.mail.transport, MailTransport::Log), "{log:?}");
        }
        let s = settings(&[
            ("PUBLIC_URL", "https://auth.example.com"),
            ("SMTP_URL", "smtps://user:pw@mail.example.com:465"),
        ])
        .unwrap();
        assert!(matches!(s.mail.transport, MailTransport::Smtp(_)));
    }

    #[test]
    fn plain_smtp_is_refused_unless_it_stays_on_this_machine() {
        let public = ("PUBLIC_URL", "https://auth.example.com");
        for url in [
            "smtp://user:pw@mail.example.com:587",
            "smtp://mail.example.com",
            "smtp://10.0.0.5:25",
            "smtp://user:pw@mail.example.com:587?tls=opportunistic",
            "smtp://[2001:db8::1]:25",
            "smtp://localhost.example.com:25",
            "smtp://127.0.0.1.nip.io:25",
            // The user part is not the host.
            "smtp://localhost:pw@mail.example.com:25",
        ] {
            let e = settings(&[public, ("SMTP_URL", url)])
                .expect_err(&format!("{url} sends credentials and links in cleartext"));
            assert_eq!(e.var, "SMTP_URL", "{url}");
            assert!(
                e.reason.contains("smtps://") && e.reason.contains("?tls=required"),
                "says how: {e}"
            );
            assert!(
                !e.to_string().contains("pw"),
                "no password in the message: {e}"
            );
        }
        for url in [
            // maildev in the tests, a local relay.
            "smtp://127.0.0.1:1025",
            "smtp://user:pw@127.0.0.1:1025",
            "smtp://127.8.9.10:25",
            "smtp://localhost:25",
            "smtp://LOCALHOST",
            "smtp://[::1]:25",
            // Encrypted, wherever it goes.
            "smtp://user:pw@mail.example.com:587?tls=required",
            "smtps://user:pw@mail.example.com:465",
        ] {
            let s = settings(&[public, ("SMTP_URL", url)]);
            assert!(s.is_ok(), "{url}: {:?}", s.err());
        }
    }

    #[test]
    fn public_url_feeds_issuer_and_audience_unless_they_are_set() {
        let s = settings(&[
            ("PUBLIC_URL", "https://Auth.Example.com/"),
            ("SMTP_URL", "log"),
        ])
        .unwrap();
        assert_eq!(s.http.public_url, "https://auth.example.com");
        assert_eq!(s.auth.issuer, "https://auth.example.com");
        let s = settings(&[
            ("PUBLIC_URL", "https://auth.example.com"),
            ("SMTP_URL", "log"),
            ("AUTH_ISSUER", "issuer-x"),
            ("AUTH_AUDIENCE", "aud-y"),
        ])
        .unwrap();
        assert_eq!(
            (s.auth.issuer.as_str(), s.auth.audience.as_str()),
            ("issuer-x", "aud-y")
        );
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        let cases: &[(&str, &str)] = &[
            ("DATABASE_URL", "mysql://localhost/db"),
            ("LEPTOS_SITE_ADDR", "localhost"),
            ("AUTH_ACCESS_TTL_SECS", "15m"),
            ("AUTH_ACCESS_TTL_SECS", "0"),
            ("AUTH_REFRESH_TTL_SECS", "-1"),
            ("AUTH_SESSION_MAX_SECS", "60"),
            ("AUTH_REFRESH_GRACE_SECS", "abc"),
            ("AUTH_REFRESH_GRACE_SECS", "1209600"),
            ("PUBLIC_URL", "example.com"),
            ("PUBLIC_URL", "ftp://example.com"),
            ("COOKIE_SECURE", "maybe"),
            ("RATE_LIMIT_ENABLED", "2"),
            ("ALLOWED_ORIGINS", "https://ok.example, not a url"),
            ("TRUSTED_PROXIES", "10.0.0.0/8, proxy.internal"),
            ("TRUSTED_PROXIES", "10.0.0.0/33"),
            ("AUTH_KEY_PUBLISH_SECS", "10m"),
            ("RUST_LOG", "info,[[["),
            ("LOG_FORMAT", "xml"),
            ("LOG_FORMAT", "jsonl"),
            ("METRICS_ADDR", "9100"),
            ("METRICS_ADDR", "localhost:9100"),
            ("METRICS_ADDR", "127.0.0.1"),
            ("SMTP_URL", "mail.example.com:25"),
            ("SMTP_URL", "smtp://"),
            ("SMTP_URL", "logs"),
            ("MAIL_FROM", "not an address"),
            ("REQUIRE_VERIFIED_EMAIL", "sometimes"),
            ("HTTP_HEADER_TIMEOUT_SECS", "0"),
            ("HTTP_HEADER_TIMEOUT_SECS", "10s"),
            ("HTTP_REQUEST_TIMEOUT_SECS", "0"),
            ("HTTP_MAX_CONNECTIONS", "0"),
            ("HTTP_MAX_CONNECTIONS", "-5"),
            ("HTTP_MAX_CONNECTIONS", "lots"),
            ("AUDIT_RETENTION_DAYS", "0"),
            ("AUDIT_RETENTION_DAYS", "-1"),
            ("AUDIT_RETENTION_DAYS", "1y"),
            ("AUDIT_RETENTION_DAYS", "18446744073709551615"),
            // Past ten years: hyper would panic adding it to an Instant, or the lifetimes
            // would wrap negative as Unix seconds.
            ("HTTP_HEADER_TIMEOUT_SECS", "18446744073709551615"),
            ("HTTP_HEADER_TIMEOUT_SECS", "315360001"),
            ("HTTP_REQUEST_TIMEOUT_SECS", "18446744073709551615"),
            ("AUTH_ACCESS_TTL_SECS", "9223372036854775808"),
            ("AUTH_REFRESH_TTL_SECS", "315360001"),
            ("AUTH_SESSION_MAX_SECS", "18446744073709551615"),
            ("HTTP_MAX_CONNECTIONS", "4294967296"),
        ];
        for (var, value) in cases {
            let e = settings(&[(var, value)]).expect_err(&format!("{var}={value} must be refused"));
            assert_eq!(e.var, *var, "{var}={value}");
            assert!(
                e.to_string().contains(var),
                "message names the variable: {e}"
            );
        }
    }

    #[test]
    fn booleans_and_origin_lists_parse() {
        let s = settings(&[
            ("COOKIE_SECURE", "false"),
            ("RATE_LIMIT_ENABLED", "0"),
            (
                "ALLOWED_ORIGINS",
                "https://a.example:443, http://b.example:8080 ,",
            ),
        ])
        .unwrap();
        assert!(!s.http.cookie_secure);
        assert!(!s.auth.rate_limit_enabled);
        assert_eq!(
            s.http.allowed_origins,
            vec!["https://a.example", "http://b.example:8080"]
        );
    }
}
