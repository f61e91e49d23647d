//! Serving HTTP/1.1 with the limits `axum::serve` does not offer: a time limit on request
//! headers (slowloris), a time limit on each request, and a bound on open connections.
//!
//! Shutdown is graceful as with `axum::serve`: the listener closes at once, idle connections
//! close, and requests in flight finish (each within its time limit).

use crate::{config::HttpLimits, error::ApiError};
use axum::{
    body::Body,
    extract::{ConnectInfo, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
    Router,
};
use hyper::server::conn::http1;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use std::{future::Future, io, net::SocketAddr, sync::Arc, time::Duration};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{watch, OwnedSemaphorePermit, Semaphore},
};
use tower::ServiceExt;

/// Serves `router` on `listener` until `shutdown` completes, then drains the connections.
/// Handlers see the peer's address as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    // One permit per open connection; they also tell when every connection has closed.
    let slots = Arc::new(Semaphore::new(limits.max_connections as usize));
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A free slot first, then accept: beyond the limit, new connections wait in the
        // kernel's accept queue instead of being taken and starved.
        let slot = tokio::select! {
            biased;
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                // Never closed while we hold `slots`.
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        tokio::spawn(serve_connection(
            stream,
            peer,
            router.clone(),
            limits,
            slot,
            stopping.clone(),
        ));
    }
    // Refuse new connections from now on.
    drop(listener);
    let _ = stop.send(true);
    // Each request in flight ends within its time limit; a response body still streaming to
    // a slow reader after that is cut rather than holding shutdown forever.
    let drain = limits.header_timeout + limits.request_timeout + Duration::from_secs(5);
    if tokio::time::timeout(drain, slots.acquire_many(limits.max_connections))
        .await
        .is_err()
    {
        tracing::warn!(
            open = limits.max_connections as usize - slots.available_permits(),
            "connections still open after {drain:?}; closing them"
        );
    }
    Ok(())
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: HttpLimits,
    _slot: OwnedSemaphorePermit,
    mut stopping: watch::Receiver<bool>,
) {
    let service = router.map_request(move |request: Request<hyper::body::Incoming>| {
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let connection = builder
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    // The guard `wait_for` returns must not live across the awaits below (it is not Send).
    let stop_requested = async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    };
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stop_requested => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        // Clients that go away, or never finish their headers: routine, not an alarm.
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// What `axum::serve` (and hyper before it) does: a connection that failed before we took
/// it is the client's business; anything else (out of file descriptors) waits a second
/// rather than spinning.
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Answers 503 `unavailable` when the response has not begun within `limit`. The handler's
/// future is dropped, so its database transaction rolls back.
pub async fn request_time_limit(
    State(limit): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(%path, "request cut at its time limit of {limit:?}");
            ApiError::TimedOut.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::api::{ErrorBody, ErrorCode};
    use axum::{http::StatusCode, routing::get};

    #[tokio::test]
    async fn a_slow_handler_is_cut_with_503_and_a_fast_one_is_not() {
        let app = Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .route("/fast", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(
                Duration::from_millis(100),
                request_time_limit,
            ));
        let response = app
            .clone()
            .oneshot(Request::get("/slow").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let body: ErrorBody = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body.error.code, ErrorCode::Unavailable);
        let response = app
            .oneshot(Request::get("/fast").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}
