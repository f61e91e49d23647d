use app::api::{ErrorBody, ErrorCode, Session};
use reqwest::{header::HeaderMap, Response, StatusCode};
use serde_json::json;
use server::{
    clock::{Clock, ManualClock, SystemClock},
    config::Settings,
    db::{Backend, Db},
    Application,
};
use std::{collections::HashMap, net::SocketAddr, path::PathBuf, sync::Arc};
use tempfile::TempDir;
use tokio::sync::oneshot;

pub const PASSWORD: &str = "correct horse battery";

/// A running app on its own port, with its own fresh database, key files and clock.
pub struct TestApp {
    pub addr: SocketAddr,
    /// The metrics listener's, when the test set `METRICS_ADDR`.
    pub metrics_addr: Option<SocketAddr>,
    pub client: reqwest::Client,
    pub db: Db,
    pub clock: ManualClock,
    pub key_file: PathBuf,
    pub state: server::state::AppState,
    /// What another instance needs to share this one's database (see `another_instance`).
    pub database_url: String,
    pub secret_file: PathBuf,
    _dir: TempDir,
    stop: Option<oneshot::Sender<()>>,
}

/// What a successful register, login or refresh gave the client.
#[derive(Clone, Debug)]
pub struct Signed {
    pub session: Session,
    /// From `Set-Cookie`, when the token was delivered as a cookie.
    pub cookie: Option<SetCookie>,
}

impl Signed {
    pub fn refresh_token(&self) -> String {
        match (&self.cookie, &self.session.refresh_token) {
            (Some(c), _) => c.value.clone(),
            (None, Some(t)) => t.clone(),
            (None, None) => panic!("no refresh token delivered"),
        }
    }
}

/// A parsed `Set-Cookie` for the refresh token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetCookie {
    pub value: String,
    pub attributes: Vec<String>,
    pub raw: String,
}

impl SetCookie {
    pub fn max_age(&self) -> i64 {
        self.attributes
            .iter()
            .find_map(|a| a.strip_prefix("Max-Age="))
            .expect("Max-Age")
            .parse()
            .unwrap()
    }
}

pub fn refresh_cookie(headers: &HeaderMap) -> Option<SetCookie> {
    let mut found = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .filter(|v| v.starts_with("refresh_token="));
    let raw = found.next()?;
    assert!(found.next().is_none(), "one refresh cookie at most");
    let mut parts = raw.split("; ");
    let value = parts
        .next()
        .unwrap()
        .trim_start_matches("refresh_token=")
        .to_string();
    Some(SetCookie {
        value,
        attributes: parts.map(str::to_string).collect(),
        raw: raw.clone(),
    })
}

impl TestApp {
    /// Starts the server's graceful shutdown, as SIGTERM does in the binary.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request failed")
    }

    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request failed")
    }

    pub async fn register_raw(&self, email: &str, password: &str, name: &str) -> Response {
        self.post_json(
            "/api/auth/register",
            json!({"email": email, "password": password, "name": name}),
        )
        .await
    }

    pub async fn login_raw(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/api/auth/login",
            json!({"email": email, "password": password}),
        )
        .await
    }

    /// Registers a person and returns the session, asserting success.
    pub async fn register(&self, email: &str) -> Signed {
        let response = self.register_raw(email, PASSWORD, "Test Person").await;
        assert_eq!(response.status(), StatusCode::CREATED);
        signed(response).await
    }

    pub async fn login(&self, email: &str) -> Signed {
        let response = self.login_raw(email, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK);
        signed(response).await
    }

    /// `POST path` as a browser sends it to a cookie endpoint: the refresh cookie (when
    /// given) and extra headers.
    pub async fn cookie_post(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut request = self.client.post(self.url(path));
        if let Some(token) = token {
            request = request.header("cookie", format!("refresh_token={token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request failed")
    }

    /// `POST /api/auth/refresh` carrying `token` in the cookie, as a browser does.
    pub async fn refresh_raw(&self, token: &str) -> Response {
        self.cookie_post("/api/auth/refresh", Some(token), &[])
            .await
    }

    pub async fn refresh(&self, token: &str) -> Signed {
        let response = self.refresh_raw(token).await;
        assert_eq!(response.status(), StatusCode::OK);
        signed(response).await
    }

    /// `POST path` with a JSON body and `Authorization: Bearer <access_token>`.
    pub async fn bearer_post(
        &self,
        path: &str,
        access_token: &str,
        body: serde_json::Value,
    ) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(access_token)
            .json(&body)
            .send()
            .await
            .expect("request failed")
    }

    /// A registered person made admin (directly in the database), signed in again with an
    /// admin token.
    pub async fn admin(&self) -> Signed {
        let email = unique_email();
        let person = self.register(&email).await;
        let id = &person.session.user.id;
        server::db::users::set_role(self.db.pool(), id, server::db::users::Role::Admin, 0)
            .await
            .unwrap();
        self.state.core.users.evict(id);
        self.login(&email).await
    }

    /// The session `access_token` belongs to, as `GET /api/sessions` lists it.
    pub async fn current_session(&self, access_token: &str) -> app::api::SessionInfo {
        let sessions: Vec<app::api::SessionInfo> = self
            .client
            .get(self.url("/api/sessions"))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("sessions")
            .json()
            .await
            .expect("a list of sessions");
        sessions
            .into_iter()
            .find(|s| s.current)
            .expect("the current session")
    }

    pub async fn me_raw(&self, access_token: &str) -> Response {
        self.client
            .get(self.url("/api/me"))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("request failed")
    }
}

pub async fn signed(response: Response) -> Signed {
    let cookie = refresh_cookie(response.headers());
    let session: Session = response.json().await.expect("a Session body");
    Signed { session, cookie }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts the app sending its mail over SMTP to the test binary's maildev.
pub async fn spawn_app_with_mail(extra: &[(&str, &str)]) -> TestApp {
    let smtp_url = crate::mailbox::mail_server().smtp_url.as_str();
    let mut vars = vec![
        ("SMTP_URL", smtp_url),
        ("MAIL_FROM", "Tests <tests@example.com>"),
    ];
    vars.extend_from_slice(extra);
    spawn_app_with(&vars).await
}

/// Starts the app with extra environment settings on top of the test defaults.
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let clock = ManualClock::at(time::OffsetDateTime::now_utc().unix_timestamp());
    spawn(extra, None, clock, 0).await
}

impl TestApp {
    /// A second instance of this app, as behind a load balancer: the same database and
    /// server secret (and clock), its own port, memory and key file, with `extra` settings.
    pub async fn another_instance(&self, extra: &[(&str, &str)]) -> TestApp {
        self.another_instance_off_by(extra, 0).await
    }

    /// As `another_instance`, on a machine whose clock is `secs` ahead: its own clock, and
    /// the real time it measures the database's offset against, both off by `secs`.
    pub async fn another_instance_off_by(&self, extra: &[(&str, &str)], secs: i64) -> TestApp {
        let secret_file = self.secret_file.display().to_string();
        let mut vars = vec![("AUTH_SECRET_FILE", secret_file.as_str())];
        vars.extend_from_slice(extra);
        let clock = if secs == 0 {
            self.clock.clone()
        } else {
            ManualClock::at(self.clock.now_unix() + secs)
        };
        spawn(&vars, Some(&self.database_url), clock, secs).await
    }
}

/// The system clock, `secs` off.
struct OffClock(i64);

impl Clock for OffClock {
    fn now(&self) -> time::OffsetDateTime {
        SystemClock.now() + time::Duration::seconds(self.0)
    }
}

/// Whether the tests run on PostgreSQL (`TEST_DATABASE_URL`), where several instances may
/// share a database; SQLite serves one.
pub fn on_postgres() -> bool {
    std::env::var("TEST_DATABASE_URL").is_ok_and(|u| u.starts_with("postgres"))
}

/// An app on `database_url`, or on a fresh database.
async fn spawn(
    extra: &[(&str, &str)],
    database_url: Option<&str>,
    clock: ManualClock,
    clock_off_by: i64,
) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = match database_url {
        Some(url) => url.to_string(),
        None => fresh_database(&dir).await,
    };
    let key_file = dir.path().join("jwt.pem");
    let secret_file = dir.path().join("secret.key");
    let mut vars: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), database_url),
        ("LEPTOS_SITE_ADDR".into(), "127.0.0.1:0".into()),
        ("AUTH_KEY_FILE".into(), key_file.display().to_string()),
        ("AUTH_SECRET_FILE".into(), secret_file.display().to_string()),
        // Tests register many people from one address; the throttling tests turn it on.
        ("RATE_LIMIT_ENABLED".into(), "false".into()),
        // Without SMTP_URL mail goes to the log; its start-up warning is noise here.
        ("RUST_LOG".into(), "warn,server::mail=error".into()),
    ]);
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    let settings = Settings::from_lookup(|name| vars.get(name).cloned()).expect("test settings");
    server::telemetry::init(&settings.rust_log, settings.log_format);
    let options = server::leptos_options(&settings);
    let database_url = vars["DATABASE_URL"].clone();
    let secret_file = PathBuf::from(&vars["AUTH_SECRET_FILE"]);
    let app = Application::build_with_reference(
        settings,
        options,
        crate::app_pages::pages(),
        Arc::new(clock.clone()),
        Arc::new(OffClock(clock_off_by)),
    )
    .await
    .expect("app starts");
    let addr = app.local_addr();
    let metrics_addr = app.metrics_addr();
    let db = app.db().clone();
    let state = app.state().clone();
    if std::env::var("TEST_DATABASE_URL").is_ok_and(|u| u.starts_with("postgres")) {
        assert_eq!(
            db.backend(),
            Backend::Postgres,
            "TEST_DATABASE_URL must be honoured"
        );
    }
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    TestApp {
        addr,
        metrics_addr,
        client,
        db,
        clock,
        key_file,
        state,
        database_url,
        secret_file,
        _dir: dir,
        stop: Some(stop),
    }
}

/// SQLite in the test's temp dir, or a new database on the PostgreSQL server named by
/// `TEST_DATABASE_URL`.
pub async fn fresh_database(dir: &TempDir) -> String {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(admin_url) if admin_url.starts_with("postgres") => {
            sqlx::any::install_default_drivers();
            let name = format!("test_{}", uuid::Uuid::new_v4().simple());
            let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url)
                .await
                .expect("connect to TEST_DATABASE_URL");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("create database {name}")))
                .execute(&mut admin)
                .await
                .expect("create test database");
            let (base, _) = admin_url
                .rsplit_once('/')
                .expect("url with a database name");
            format!("{base}/{name}")
        }
        _ => format!("sqlite://{}/app.db", dir.path().display()),
    }
}

/// Asserts the contract's error shape and returns it.
pub async fn assert_error(response: Response, status: StatusCode, code: ErrorCode) -> ErrorBody {
    assert_eq!(response.status(), status);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let text = response.text().await.expect("body");
    let body: ErrorBody = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(body.error.code, code, "{text}");
    assert!(!body.error.message.is_empty());
    if code != ErrorCode::ValidationFailed {
        assert_eq!(
            body.error.fields, None,
            "fields only with validation_failed"
        );
    }
    body
}

/// Asserts an error and that the response clears the refresh cookie.
pub async fn assert_error_clearing(response: Response, status: StatusCode, code: ErrorCode) {
    let cookie = refresh_cookie(response.headers()).expect("the refresh cookie is cleared");
    assert_eq!(cookie.value, "");
    assert!(
        cookie.attributes.contains(&"Max-Age=0".to_string()),
        "{}",
        cookie.raw
    );
    assert!(
        cookie.attributes.contains(&"Path=/api/auth".to_string()),
        "{}",
        cookie.raw
    );
    assert_error(response, status, code).await;
}

pub fn unique_email() -> String {
    format!("person-{}@example.com", uuid::Uuid::new_v4().simple())
}
