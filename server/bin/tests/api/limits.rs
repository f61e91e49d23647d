//! HTTP limits: request headers that never finish, handlers that take too long, and more
//! connections than the server keeps open at once. Each test sets the limit small.

use crate::helpers::{assert_error, spawn_app, spawn_app_with, unique_email};
use app::api::ErrorCode;
use reqwest::StatusCode;
use std::{net::SocketAddr, time::Duration};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::{timeout, Instant},
};

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n";

/// Reads one `GET /healthz` answer (keep-alive, so not to the end of the stream).
async fn read_healthz(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains(r#"{"status":"ok"}"#) {
        let n = stream.read(&mut buf).await.expect("read");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

async fn connect_and_ask(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(HEALTHZ).await.expect("write");
    stream
}

#[tokio::test]
async fn a_connection_that_never_finishes_its_headers_is_closed() {
    let app = spawn_app_with(&[("HTTP_HEADER_TIMEOUT_SECS", "1")]).await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    // The headers' final empty line never comes (slowloris).
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection after the header time limit");
    // Closed (EOF, or a reset), and nothing served.
    assert!(read.is_err() || answer.is_empty(), "{answer:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed only once the limit passed: {:?}",
        started.elapsed()
    );
    // A complete request on a new connection is served as usual.
    let mut stream = connect_and_ask(app.addr).await;
    assert!(read_healthz(&mut stream).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_request_that_takes_too_long_is_answered_503_in_the_error_shape() {
    let app = spawn_app_with(&[("HTTP_REQUEST_TIMEOUT_SECS", "1")]).await;
    let person = app.register(&unique_email()).await;
    // Every database connection held here: the route's query waits for one (for up to the
    // pool's 5 s acquire timeout, which would be a 500), so the request limit cuts it first.
    let max = app.db.pool().options().get_max_connections();
    let mut held = Vec::new();
    for _ in 0..max {
        held.push(app.db.pool().acquire().await.unwrap());
    }
    let started = Instant::now();
    let response = app
        .client
        .get(app.url("/api/sessions"))
        .bearer_auth(&person.session.access_token)
        .send()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_error(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Unavailable,
    )
    .await;
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(4),
        "{elapsed:?}"
    );
    drop(held);
    let response = app
        .client
        .get(app.url("/api/sessions"))
        .bearer_auth(&person.session.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_connection_beyond_the_limit_waits_until_another_closes() {
    let app = spawn_app_with(&[("HTTP_MAX_CONNECTIONS", "2")]).await;
    let mut first = connect_and_ask(app.addr).await;
    let mut second = connect_and_ask(app.addr).await;
    read_healthz(&mut first).await;
    read_healthz(&mut second).await;

    // The kernel completes the third connection (it waits in the accept queue), but the
    // server does not take it while two are open.
    let mut third = connect_and_ask(app.addr).await;
    let mut buf = [0u8; 64];
    assert!(
        timeout(Duration::from_millis(700), third.read(&mut buf))
            .await
            .is_err(),
        "the third connection is not served while two are open"
    );

    drop(first);
    let answer = timeout(Duration::from_secs(5), read_healthz(&mut third))
        .await
        .expect("served once the first connection closed");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // The second connection was served all along, and still is.
    second.write_all(HEALTHZ).await.unwrap();
    read_healthz(&mut second).await;
}

#[tokio::test]
async fn shutdown_finishes_the_requests_in_flight_and_takes_no_new_ones() {
    let mut app = spawn_app().await;
    let person = app.register(&unique_email()).await;
    let max = app.db.pool().options().get_max_connections();
    let mut held = Vec::new();
    for _ in 0..max {
        held.push(app.db.pool().acquire().await.unwrap());
    }
    // A client holding an idle keep-alive connection, its request long answered.
    let mut idle = connect_and_ask(app.addr).await;
    read_healthz(&mut idle).await;
    // In flight: waiting for a database connection.
    let in_flight = tokio::spawn({
        let request = app
            .client
            .get(app.url("/api/sessions"))
            .bearer_auth(&person.session.access_token);
        async move { request.send().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        TcpStream::connect(app.addr).await.is_err(),
        "no new connection once shutdown began"
    );
    drop(held);
    let response = timeout(Duration::from_secs(5), in_flight)
        .await
        .expect("answered")
        .unwrap()
        .expect("the request in flight is answered, not cut");
    assert_eq!(response.status(), StatusCode::OK);
    let answered = Instant::now();
    // The idle connection is closed rather than waited for, so `run_until` returns (its
    // last step closes the database) well before the drain limit of 10 + 30 + 5 s.
    let mut rest = Vec::new();
    let read = timeout(Duration::from_secs(5), idle.read_to_end(&mut rest))
        .await
        .expect("the idle connection is closed at shutdown");
    assert!(read.is_err() || rest.is_empty(), "{rest:?}");
    timeout(Duration::from_secs(5), async {
        while !app.db.pool().is_closed() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("run_until returns once the last request is answered");
    assert!(
        answered.elapsed() < Duration::from_secs(5),
        "{:?}",
        answered.elapsed()
    );
}

#[tokio::test]
async fn a_keep_alive_connection_is_served_many_requests() {
    let app = spawn_app().await;
    let mut stream = connect_and_ask(app.addr).await;
    for _ in 0..3 {
        read_healthz(&mut stream).await;
        stream.write_all(HEALTHZ).await.unwrap();
    }
    read_healthz(&mut stream).await;
}

#[tokio::test]
async fn a_request_cut_at_its_time_limit_keeps_its_cors_headers() {
    let origin = "https://admin.example";
    let app = spawn_app_with(&[
        ("HTTP_REQUEST_TIMEOUT_SECS", "1"),
        ("ALLOWED_ORIGINS", origin),
    ])
    .await;
    let person = app.register(&unique_email()).await;
    let max = app.db.pool().options().get_max_connections();
    let mut held = Vec::new();
    for _ in 0..max {
        held.push(app.db.pool().acquire().await.unwrap());
    }
    let response = app
        .client
        .get(app.url("/api/sessions"))
        .header("origin", origin)
        .bearer_auth(&person.session.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some(origin),
        "a browser on an allowed origin can read the 503"
    );
    drop(held);
}

#[tokio::test]
async fn a_client_that_never_reads_its_answers_loses_its_connection_slot() {
    let app = spawn_app_with(&[
        ("HTTP_MAX_CONNECTIONS", "1"),
        ("HTTP_HEADER_TIMEOUT_SECS", "1"),
        ("HTTP_REQUEST_TIMEOUT_SECS", "2"),
    ])
    .await;
    // Client A: a small receive window, many pipelined requests, and never a read. Its
    // answers soon fill its window and the server's send buffer, so the server's writes
    // stall while A keeps the one connection slot.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stalled = socket.connect(app.addr).await.unwrap();
    let (_unread, mut requests) = stalled.into_split();
    let writer = tokio::spawn(async move {
        let pipelined = HEALTHZ.repeat(20_000);
        // The server stops reading once its writes stall, so this write may never end,
        // or fail once the server closes the connection; either way the half stays open.
        let _ = requests.write_all(&pipelined).await;
        std::future::pending::<()>().await;
        drop(requests);
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Client B is served once the stalled connection has been closed and its slot freed.
    let started = Instant::now();
    let mut waiting = connect_and_ask(app.addr).await;
    let answer = timeout(Duration::from_secs(8), read_healthz(&mut waiting))
        .await
        .expect("a connection whose writes stall must not hold its slot");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    writer.abort();
}
