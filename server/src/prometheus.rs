//! Prometheus metrics: the process's recorder, and `/metrics` on a listener of its own
//! (`METRICS_ADDR`), never on the public address. docs/operating.md describes the series.
//! Counters are counted where their outcome is decided (`telemetry::Observe`,
//! `service::sessions`); the gauges are read at each scrape.

use crate::{auth::password::Passwords, config::HttpLimits, db::Db, StartupError};
use axum::{extract::State, http::header, response::IntoResponse, routing::get, Router};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::{net::SocketAddr, sync::OnceLock, time::Duration};
use tokio::{net::TcpListener, task::JoinHandle};

/// The outcomes of `auth_logins_total`.
pub const LOGIN_OUTCOMES: [&str; 5] = [
    "ok",
    "invalid_credentials",
    "rate_limited",
    "account_disabled",
    "overloaded",
];

/// The outcomes of `auth_refresh_total`.
pub const REFRESH_OUTCOMES: [&str; 5] = ["rotated", "converged", "reused", "invalid", "expired"];

/// Buckets of `http_request_duration_seconds`: Prometheus' defaults, 5 ms to 10 s (a login
/// hashes for tens of milliseconds; the request time limit is 30 s by default).
const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process's recorder, installed by the first app that serves metrics.
///
/// The `metrics` crate has one recorder a process, so this is the one global of the server:
/// every app of the process (the tests start many) counts into it and serves it. Failing
/// once (another recorder was installed first) fails for good, hence the cached result.
fn recorder() -> Result<PrometheusHandle, String> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE.get_or_init(install).clone()
}

fn install() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("http_request_duration_seconds".into()),
            DURATION_BUCKETS,
        )
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|e| e.to_string())?;
    metrics::describe_counter!(
        "http_requests_total",
        "HTTP requests answered, by method, matched route and status"
    );
    metrics::describe_histogram!(
        "http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to the response headers, by matched route"
    );
    metrics::describe_counter!("auth_logins_total", "Password sign-ins, by outcome");
    metrics::describe_counter!("auth_refresh_total", "Refresh tokens presented, by outcome");
    metrics::describe_gauge!(
        "auth_hash_queue",
        "Password hashes waiting for a hashing thread"
    );
    metrics::describe_gauge!(
        "db_pool_connections",
        "Open database connections, idle or in use"
    );
    // Every outcome is a series from the start, so a rate or an alert on one that has not
    // happened yet reads 0, not nothing.
    for outcome in LOGIN_OUTCOMES {
        metrics::counter!("auth_logins_total", "outcome" => outcome).increment(0);
    }
    for outcome in REFRESH_OUTCOMES {
        metrics::counter!("auth_refresh_total", "outcome" => outcome).increment(0);
    }
    Ok(handle)
}

/// The metrics listener, bound, not yet serving.
pub struct Listener {
    listener: TcpListener,
    addr: SocketAddr,
    handle: PrometheusHandle,
}

impl Listener {
    pub async fn bind(addr: SocketAddr) -> Result<Listener, StartupError> {
        let handle = recorder().map_err(StartupError::Metrics)?;
        let bind_failed = |source| StartupError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_failed)?;
        let addr = listener.local_addr().map_err(bind_failed)?;
        Ok(Listener {
            listener,
            addr,
            handle,
        })
    }

    /// The bound address (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `GET /metrics`, with the gauges of `db` and `passwords`, under the same
    /// connection limits as the public listener, until the task is aborted.
    pub fn spawn(self, db: Db, passwords: Passwords, limits: HttpLimits) -> JoinHandle<()> {
        let router = Router::new()
            .route("/metrics", get(scrape))
            .with_state(Scrape {
                handle: self.handle.clone(),
                db,
                passwords,
            });
        tokio::spawn(async move {
            let serving =
                crate::serve::serve(self.listener, router, limits, std::future::pending());
            tokio::select! {
                served = serving => if let Err(e) = served {
                    tracing::error!(error = %e, "the metrics listener failed");
                },
                () = keep_up(self.handle) => {},
            }
        })
    }
}

/// What a scrape reads.
#[derive(Clone)]
struct Scrape {
    handle: PrometheusHandle,
    db: Db,
    passwords: Passwords,
}

async fn scrape(State(scrape): State<Scrape>) -> impl IntoResponse {
    metrics::gauge!("auth_hash_queue").set(scrape.passwords.queued() as f64);
    let pool = scrape.db.connections();
    metrics::gauge!("db_pool_connections", "state" => "idle").set(pool.idle as f64);
    metrics::gauge!("db_pool_connections", "state" => "in_use").set(pool.in_use as f64);
    scrape.handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        scrape.handle.render(),
    )
}

/// Histogram samples wait in buffers until a scrape or an upkeep takes them: without
/// scrapes they would grow for ever.
async fn keep_up(handle: PrometheusHandle) {
    let mut ticker = tokio::time::interval(Duration::from_secs(5));
    loop {
        ticker.tick().await;
        handle.run_upkeep();
    }
}
