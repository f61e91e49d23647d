//! Serving HTTP/1.1 with the limits `axum::serve` does not offer: a time limit on request
//! headers (slowloris), a time limit on each request, a time limit on a stalled write (a
//! client that does not read its answers), and a bound on open connections.
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
use std::{
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{watch, OwnedSemaphorePermit, Semaphore},
    time::Sleep,
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
    // Each request in flight ends within its time limit, and a stalled write within the
    // header time limit; a response body still trickling to a slow reader after that is cut
    // rather than holding shutdown forever.
    let drain = drain_limit(limits);
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

/// How long shutdown waits for open connections: a request may wait the header time
/// limit for its headers, then the request time limit for its answer; 5 s more to write it.
/// Saturating: the settings bound each limit, but a sum that overflowed would panic here,
/// at shutdown, of all moments.
fn drain_limit(limits: HttpLimits) -> Duration {
    limits
        .header_timeout
        .saturating_add(limits.request_timeout)
        .saturating_add(Duration::from_secs(5))
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
    // No `with_upgrades`: no route upgrades, and an upgraded connection would leave this
    // function, and with it the connection bound, while its socket stays open.
    let io = TokioIo::new(WriteTimeout::new(stream, limits.header_timeout));
    let connection = builder.serve_connection(io, TowerToHyperService::new(service));
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

/// A stream whose writes fail with `TimedOut` once one has made no progress for `limit`.
///
/// hyper has no write timeout, and the request time limit ends when the response headers
/// are ready: a client that pipelines requests (or asks for a large file) and never reads
/// would otherwise keep its connection, and one of the bounded slots, for ever. The header
/// time limit serves as the limit: a client that cannot take a single byte for that long is
/// as stalled as one that cannot send its headers.
struct WriteTimeout<S> {
    inner: S,
    limit: Duration,
    /// Armed when a write first finds the socket full, disarmed by any progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteTimeout<S> {
    fn new(inner: S, limit: Duration) -> Self {
        WriteTimeout {
            inner,
            limit,
            stalled: None,
        }
    }

    /// What a write that returned `poll` means, given how long writes have been stalled.
    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let limit = self.limit;
                let stalled = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                // Polled here so its waker is registered: the task wakes when the limit
                // passes even if the socket never becomes writable.
                match stalled.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the client took nothing for {limit:?}"),
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, poll)
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
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            // Inside the request's span, which names its route (never the path: it may
            // hold an id).
            tracing::warn!("request cut at its time limit of {limit:?}");
            ApiError::TimedOut.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::{ErrorBody, ErrorCode};
    use axum::{http::StatusCode, routing::get};

    #[test]
    fn the_drain_limit_adds_the_time_limits_without_overflowing() {
        let limits = HttpLimits {
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 1,
        };
        assert_eq!(drain_limit(limits), Duration::from_secs(45));
        let huge = HttpLimits {
            header_timeout: Duration::MAX,
            request_timeout: Duration::MAX,
            max_connections: 1,
        };
        assert_eq!(drain_limit(huge), Duration::MAX);
    }

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
