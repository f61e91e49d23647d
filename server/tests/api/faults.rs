//! Faults of the components around the server: what a person's request gets while one is
//! down, and that nothing is lost once it is back.

use crate::{
    helpers::{assert_error, spawn_app_with, unique_email},
    mailbox::mail_server,
};
use app::api::ErrorCode;
use reqwest::StatusCode;
use serde_json::json;
use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use tokio::net::{TcpListener, TcpStream};

/// A mail server that can be down: while `down`, every connection is closed at once
/// (counted in `refused`); once up, connections go through to the tests' maildev.
struct FlakyMailServer {
    url: String,
    down: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

async fn flaky_mail_server() -> FlakyMailServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let real = mail_server()
        .smtp_url
        .trim_start_matches("smtp://")
        .to_string();
    let (down, refused) = (
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicUsize::new(0)),
    );
    let task = {
        let (down, refused) = (down.clone(), refused.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if down.load(Ordering::SeqCst) {
                    refused.fetch_add(1, Ordering::SeqCst);
                    drop(client);
                    continue;
                }
                let real = real.clone();
                tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(real).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        })
    };
    FlakyMailServer {
        url,
        down,
        refused,
        _task: task,
    }
}

#[tokio::test]
async fn mail_sent_while_the_mail_server_is_down_arrives_once_it_is_back() {
    let smtp = flaky_mail_server().await;
    let app = spawn_app_with(&[
        ("SMTP_URL", smtp.url.as_str()),
        ("MAIL_FROM", "Tests <tests@example.com>"),
    ])
    .await;
    let email = unique_email();
    // Both requests succeed at once whatever the mail server does: registration mails a
    // verification code, the forgotten password a reset link.
    app.register(&email).await;
    let forgot = app
        .post_json("/api/auth/password/forgot", json!({ "email": email }))
        .await;
    assert_eq!(forgot.status(), StatusCode::ACCEPTED);
    // Each message's first try finds the mail server down.
    let started = Instant::now();
    while smtp.refused.load(Ordering::SeqCst) < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no try to send"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    smtp.down.store(false, Ordering::SeqCst);
    // Retried, both arrive.
    let verification = mail_server()
        .nth_with_subject(&email, "Your verification code", 1)
        .await;
    let reset = mail_server()
        .nth_with_subject(&email, "Reset your password", 1)
        .await;
    assert!(verification.text.contains("code"), "{}", verification.text);
    assert!(reset.text.contains("/reset-password"), "{}", reset.text);
}

/// The database out of reach is the service unavailable, not a server error: 503
/// `unavailable` with a `Retry-After`, the same as `/readyz` says.
#[tokio::test]
async fn requests_needing_an_unreachable_database_answer_503_unavailable() {
    let app = spawn_app_with(&[]).await;
    let email = unique_email();
    app.register(&email).await;
    app.db.close().await;
    let login = app
        .post_json(
            "/api/auth/login",
            json!({ "email": email, "password": crate::helpers::PASSWORD }),
        )
        .await;
    let retry_after = login.headers().get("retry-after").cloned();
    assert_error(
        login,
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Unavailable,
    )
    .await;
    assert!(retry_after.is_some(), "no Retry-After");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
}
