//! The axum server: server-side rendering, the HTTP API and the database.
//! `Application::build` is what the binary (`server/bin`) runs and what the integration
//! tests start; both hand it the app's pages (`pages::Pages`), as this library does not
//! depend on `app`.

pub mod assets;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod files;
pub mod mail;
pub mod oidc;
pub mod openapi;
pub mod pages;
pub mod prometheus;
pub mod proxies;
pub mod rotation_ceiling;
pub mod routes;
pub mod security;
pub mod serve;
pub mod service;
pub mod state;
pub mod telemetry;

use axum::Router;
use clock::{SharedClock, SystemClock};
use config::Settings;
use db::{Db, DbError};
use leptos::config::{get_configuration, LeptosOptions};
use leptos_axum::LeptosRoutes;
use pages::Pages;
use secrecy::ExposeSecret;
use state::AppState;
use std::{future::Future, net::SocketAddr, path::Path, sync::Arc};
use tokio::net::TcpListener;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("key file {0}")]
    Key(#[from] auth::keys::KeyError),
    #[error("signing keys: {0}")]
    Keys(#[from] service::keys::KeysError),
    #[error("reading the database's time: {0}")]
    DatabaseTime(sqlx::Error),
    #[error(transparent)]
    Password(#[from] auth::password::PasswordError),
    #[error("mail: {0}")]
    Mail(#[from] mail::MailError),
    #[error("identity providers: {0}")]
    Oidc(String),
    #[error("metrics: {0}")]
    Metrics(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A configured server, bound to its port, not yet serving.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    /// `METRICS_ADDR`'s listener, when set.
    metrics: Option<prometheus::Listener>,
    router: Router,
    state: AppState,
    db: Db,
    clock: SharedClock,
    /// For keeping the signing keys up with the database: what opens them, and the
    /// versions loaded.
    sealer: Arc<auth::keys::Sealer>,
    keys_seen: Vec<(String, i64)>,
    /// Wakes the keys' reader when another instance announces a new key.
    keys_changed: Arc<tokio::sync::Notify>,
    database_clock: Arc<clock::DatabaseClock>,
}

impl Application {
    pub async fn build(
        settings: Settings,
        leptos_options: LeptosOptions,
        pages: Pages,
        clock: SharedClock,
    ) -> Result<Application, StartupError> {
        Application::build_with_reference(
            settings,
            leptos_options,
            pages,
            clock,
            Arc::new(SystemClock),
        )
        .await
    }

    /// As [`Application::build`], with the clock the database's offset is measured
    /// against (`reference`): the system clock, but for tests of instances whose clocks
    /// differ (see `clock::DatabaseClock`).
    pub async fn build_with_reference(
        settings: Settings,
        leptos_options: LeptosOptions,
        pages: Pages,
        clock: SharedClock,
        reference: SharedClock,
    ) -> Result<Application, StartupError> {
        let db = Db::connect(settings.database_url.expose_secret()).await?;
        db.migrate().await?;
        // Every instance on the database then judges times (the refresh grace window) alike.
        let database_clock = Arc::new(clock::DatabaseClock::new(clock, reference));
        database_clock
            .measure(&db)
            .await
            .map_err(StartupError::DatabaseTime)?;
        let clock: SharedClock = database_clock.clone();
        let listener = TcpListener::bind(settings.http.site_addr)
            .await
            .map_err(|source| StartupError::Bind {
                addr: settings.http.site_addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: settings.http.site_addr,
            source,
        })?;
        let metrics = match settings.metrics_addr {
            Some(addr) => Some(prometheus::Listener::bind(addr).await?),
            None => None,
        };
        let secret =
            auth::keys::load_or_create_secret(&settings.auth.secret_file, &mut rand::rng())?;
        let sealer = Arc::new(auth::keys::Sealer::new(&secret));
        service::keys::import_first(&db, &sealer, &settings.auth.key_file, clock.unix()).await?;
        let ttl = config::unix_secs(settings.auth.access_ttl);
        let loaded =
            service::keys::load(&db, &sealer, clock.unix(), auth::jwt::token_life(ttl)).await?;
        let jwt = auth::jwt::JwtKeys::new(
            loaded.keys,
            &settings.auth.issuer,
            &settings.auth.audience,
            ttl,
        );
        let core = service::Core::new(&settings, db.clone(), secret)?;
        if db.backend() == db::Backend::Postgres {
            // Other instances' changes go unheard until the listener is up (see `run_until`).
            core.users.set_hearing(false);
        }
        let state = AppState {
            leptos_options,
            jwt: Arc::new(jwt),
            core,
            settings: Arc::new(settings),
            clock: clock.clone(),
        };
        Ok(Application {
            listener,
            addr,
            metrics,
            router: build_router(state.clone(), pages),
            state,
            db,
            clock,
            sealer,
            keys_seen: loaded.versions,
            keys_changed: Arc::default(),
            database_clock,
        })
    }

    /// The bound address (the real port when the settings asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The metrics listener's bound address, when `METRICS_ADDR` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(prometheus::Listener::local_addr)
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The shared state, for routes of your own (and tests) next to the built-in ones.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight (within the
    /// HTTP limits of the settings), sends the mail still queued and closes the database.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let pruner = tokio::spawn(prune_sessions(
            self.db.clone(),
            self.clock.clone(),
            self.state.settings.audit_retention,
        ));
        let keys = tokio::spawn(service::keys::keep_up(
            self.db.clone(),
            self.sealer.clone(),
            self.state.jwt.clone(),
            self.clock.clone(),
            self.keys_seen.clone(),
            self.keys_changed.clone(),
        ));
        let measuring = tokio::spawn(self.database_clock.clone().keep_measuring(self.db.clone()));
        // Instances sharing a PostgreSQL database hear each other's changes.
        let listening = (self.db.backend() == db::Backend::Postgres).then(|| {
            tokio::spawn(service::changes::follow(
                self.db.clone(),
                self.state.settings.database_url.clone(),
                self.state.core.users.clone(),
                self.keys_changed.clone(),
            ))
        });
        // Discovery of the identity providers, kept up in the background: one that cannot be
        // reached delays nothing else.
        self.state.core.providers.keep_discovered();
        let limits = self.state.settings.http.limits;
        let metrics = self.metrics.map(|metrics| {
            metrics.spawn(self.db.clone(), self.state.core.passwords.clone(), limits)
        });
        let served = serve::serve(self.listener, self.router, limits, shutdown).await;
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        pruner.abort();
        keys.abort();
        measuring.abort();
        if let Some(listening) = listening {
            listening.abort();
        }
        // Mail queued by the last requests (a code, a reset link) still goes out.
        self.state.core.mailer.flush(mail::LONGEST_SEND).await;
        self.db.close().await;
        served
    }
}

/// Prunes every ten minutes, off the request path (see [`prune_once`]).
async fn prune_sessions(db: Db, clock: SharedClock, audit_retention: std::time::Duration) {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(600);
    let mut ticker = tokio::time::interval(EVERY);
    loop {
        ticker.tick().await;
        if let Err(e) = prune_once(&db, clock.unix(), audit_retention).await {
            tracing::warn!(error = %e, "pruning failed");
        }
    }
}

/// One round of pruning at `now`: sessions that ended more than a week ago, codes and
/// reset links that ended more than a day ago, audit entries older than their retention.
pub async fn prune_once(
    db: &Db,
    now: i64,
    audit_retention: std::time::Duration,
) -> Result<(), sqlx::Error> {
    /// Used codes and reset links are kept a day, for the record.
    const KEEP_USED_SECS: i64 = 24 * 3600;
    // In batches, each a write transaction: a backlog (the first round after an upgrade or
    // an outage) deleted in one statement can hold SQLite's write lock past the 5 s other
    // writers wait, and fail them.
    let ended_before = now - service::sessions::KEEP_ENDED_SECS;
    let sessions = db
        .prune_in_batches(
            |conn, before| Box::pin(db::sessions::prune(conn, before)),
            ended_before,
        )
        .await?;
    let day_ago = now - KEEP_USED_SECS;
    // Codes and links live a day, so at most a day's worth goes at once: one transaction,
    // taking its turn like any writer.
    let mut tx = db.begin_write().await?;
    db::email_codes::prune(&mut *tx, day_ago).await?;
    db::password_resets::prune(&mut *tx, day_ago).await?;
    db::oidc_flows::prune(&mut *tx, day_ago).await?;
    db::oidc_flows::prune_link_tickets(&mut *tx, day_ago).await?;
    db::mfa::prune_challenges(&mut *tx, day_ago).await?;
    db::passkeys::prune_ceremonies(&mut *tx, day_ago).await?;
    tx.commit().await?;
    // Limits' windows are at most an hour: their rows go a minute after the window ended.
    db.prune_in_batches(
        |conn, before| Box::pin(db::rate_limits::prune(conn, before)),
        now - 60,
    )
    .await?;
    let retention = config::unix_secs(audit_retention);
    let entries = db
        .prune_in_batches(
            |conn, before| Box::pin(db::audit::prune(conn, before)),
            now.saturating_sub(retention),
        )
        .await?;
    if sessions + entries > 0 {
        tracing::info!(sessions, audit_entries = entries, "pruned");
    }
    Ok(())
}

/// The whole app: pages (SSR + hydration), the API, health checks and static files.
pub fn build_router(state: AppState, pages: Pages) -> Router {
    let options = state.leptos_options.clone();
    let live_reload = std::env::var("LEPTOS_WATCH").is_ok();
    let providers: Vec<api::ProviderInfo> = state
        .core
        .providers
        .all()
        .map(|p| api::ProviderInfo {
            id: p.settings.id.clone(),
            name: p.settings.name.clone(),
        })
        .collect();
    let Pages {
        routes,
        shell,
        provide_providers,
    } = pages;
    let page_context = move || {
        security::provide_page_csp(live_reload);
        provide_providers(providers.clone());
    };

    let pages = Router::new()
        .merge(assets::pkg_router(&options))
        .leptos_routes_with_context(&state, routes, page_context.clone(), {
            let options = options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(page_context, shell))
        .layer(axum::middleware::from_fn(assets::page_cache_policy));

    let cors = routes::cors(&state.settings);
    let request_limit = state.settings.http.limits.request_timeout;
    let router = routes::mount_api(
        pages
            .merge(routes::health::router())
            .merge(routes::keys::router()),
        cors,
        request_limit,
    )
    .layer(telemetry::trace_layer())
    .layer(telemetry::Observe)
    .with_state(state);
    security::with_security_headers(router)
}

/// Leptos' own options: from cargo-leptos' environment when it started us, else defaults
/// matching `[[workspace.metadata.leptos]]`. The listen address always comes from `Settings`.
pub fn leptos_options(settings: &Settings) -> LeptosOptions {
    // Without cargo-leptos' variables `get_configuration` fails (and prints advice).
    let from_cargo_leptos = std::env::var_os("LEPTOS_OUTPUT_NAME").is_some()
        || option_env!("LEPTOS_OUTPUT_NAME").is_some();
    let mut options = match from_cargo_leptos.then(|| get_configuration(None)) {
        Some(Ok(conf)) => conf.leptos_options,
        _ => LeptosOptions::builder().output_name("jwt-auth").build(),
    };
    options.site_addr = settings.http.site_addr;
    // Whatever the settings say, the pages name the files the last build made: hashed
    // names only when a hashed release build's files are there.
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    options.hash_files = assets::hashed_build_present(&options, &exe_dir);
    assets::warn_if_site_missing(&options);
    options
}

/// Completes on ctrl-c or SIGTERM. The handlers are installed when this is called, not
/// when the future is first polled, so a signal that arrives right after start-up is not
/// lost to the default action (which kills the process without draining requests).
#[cfg(unix)]
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        match (interrupt, terminate) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {},
                    _ = terminate.recv() => {},
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "cannot listen for signals; stop with SIGKILL");
                std::future::pending::<()>().await;
            }
        }
        tracing::info!("shutting down");
    }
}

#[cfg(not(unix))]
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    }
}
