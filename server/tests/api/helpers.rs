use app::api::{ErrorBody, ErrorCode};
use reqwest::{Response, StatusCode};
use server::{
    clock::SystemClock,
    config::Settings,
    db::{Backend, Db},
    Application,
};
use std::{collections::HashMap, net::SocketAddr, sync::Arc};
use tempfile::TempDir;
use tokio::sync::oneshot;

/// A running app on its own port, with its own fresh database and key files.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub db: Db,
    _dir: TempDir,
    _stop: oneshot::Sender<()>,
}

impl TestApp {
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
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts the app with extra environment settings on top of the test defaults.
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = fresh_database(&dir).await;
    let mut vars: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), database_url),
        ("LEPTOS_SITE_ADDR".into(), "127.0.0.1:0".into()),
        (
            "AUTH_KEY_FILE".into(),
            dir.path().join("jwt.pem").display().to_string(),
        ),
        (
            "AUTH_SECRET_FILE".into(),
            dir.path().join("secret.key").display().to_string(),
        ),
        ("RUST_LOG".into(), "warn".into()),
    ]);
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    let settings = Settings::from_lookup(|name| vars.get(name).cloned()).expect("test settings");
    server::telemetry::init(&settings.rust_log);
    let options = server::leptos_options(&settings);
    let app = Application::build(settings, options, Arc::new(SystemClock))
        .await
        .expect("app starts");
    let addr = app.local_addr();
    let db = app.db().clone();
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
        client,
        db,
        _dir: dir,
        _stop: stop,
    }
}

/// SQLite in the test's temp dir, or a new database on the PostgreSQL server named by
/// `TEST_DATABASE_URL`.
async fn fresh_database(dir: &TempDir) -> String {
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
    body
}
