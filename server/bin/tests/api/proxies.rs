//! `TRUSTED_PROXIES`: the client's address from `X-Forwarded-For`, believed only from a
//! trusted peer, in sessions, the audit log and rate limits.

use crate::helpers::{assert_error, spawn_app_with, unique_email, TestApp, PASSWORD};
use app::api::{AuditEntry, ErrorCode};
use reqwest::StatusCode;
use serde_json::json;

/// A login sent (from 127.0.0.1, as every test request) with `X-Forwarded-For: forwarded`.
async fn login_via(
    app: &TestApp,
    email: &str,
    password: &str,
    forwarded: &str,
) -> reqwest::Response {
    app.client
        .post(app.url("/api/auth/login"))
        .header("x-forwarded-for", forwarded)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login")
}

async fn recorded_addresses(
    app: &TestApp,
    email: &str,
    forwarded: &str,
) -> (Option<String>, Option<String>) {
    let response = login_via(app, email, PASSWORD, forwarded).await;
    let signed = crate::helpers::signed(response).await;
    let session = app.current_session(&signed.session.access_token).await;
    let admin = app.admin().await;
    let audit: Vec<AuditEntry> = app
        .client
        .get(app.url("/api/admin/audit?per_page=100"))
        .bearer_auth(&admin.session.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let login = audit
        .into_iter()
        .find(|e| {
            e.action == "login_succeeded"
                && e.subject_id.as_deref() == Some(&signed.session.user.id)
        })
        .expect("the login's audit entry");
    (session.ip, login.ip)
}

#[tokio::test]
async fn a_trusted_proxy_names_the_client_in_sessions_and_the_audit_log() {
    let app = spawn_app_with(&[("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")]).await;
    let email = unique_email();
    app.register(&email).await;
    // What the client wrote itself (left) is not believed; the proxy's append is.
    let (session, audit) =
        recorded_addresses(&app, &email, "1.2.3.4, 198.51.100.7, 10.1.1.1").await;
    assert_eq!(session.as_deref(), Some("198.51.100.7"));
    assert_eq!(audit.as_deref(), Some("198.51.100.7"));
}

#[tokio::test]
async fn an_untrusted_peer_cannot_name_another_client() {
    let app = spawn_app_with(&[("TRUSTED_PROXIES", "10.0.0.0/8")]).await;
    let email = unique_email();
    app.register(&email).await;
    let (session, audit) = recorded_addresses(&app, &email, "198.51.100.7").await;
    assert_eq!(session.as_deref(), Some("127.0.0.1"));
    assert_eq!(audit.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn limits_count_per_client_behind_a_trusted_proxy_and_per_peer_otherwise() {
    let behind = spawn_app_with(&[
        ("TRUSTED_PROXIES", "127.0.0.1"),
        ("RATE_LIMIT_ENABLED", "true"),
    ])
    .await;
    let email = unique_email();
    behind.register(&email).await;
    for _ in 0..10 {
        let r = login_via(&behind, &email, "wrong password", "198.51.100.7").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    assert_error(
        login_via(&behind, &email, PASSWORD, "198.51.100.7").await,
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
    )
    .await;
    // Another client behind the same proxy still may (its own account-and-address count).
    assert_eq!(
        login_via(&behind, &email, PASSWORD, "198.51.100.8")
            .await
            .status(),
        StatusCode::OK
    );
    // Without the proxy trusted, a made-up header per guess changes nothing: the peer counts.
    let direct = spawn_app_with(&[("RATE_LIMIT_ENABLED", "true")]).await;
    let email = unique_email();
    direct.register(&email).await;
    for i in 0..10 {
        let r = login_via(
            &direct,
            &email,
            "wrong password",
            &format!("198.51.100.{i}"),
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    assert_error(
        login_via(&direct, &email, PASSWORD, "198.51.100.99").await,
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
    )
    .await;
}

#[tokio::test]
async fn bytes_a_client_put_before_the_proxys_entry_do_not_hide_its_address() {
    let app = spawn_app_with(&[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    let email = unique_email();
    app.register(&email).await;
    // What nginx sends for a client that wrote a non-ASCII X-Forwarded-For itself.
    let value = reqwest::header::HeaderValue::from_bytes(b"\xff\xfe, 198.51.100.7").unwrap();
    let response = app
        .client
        .post(app.url("/api/auth/login"))
        .header("x-forwarded-for", value)
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let signed = crate::helpers::signed(response).await;
    let session = app.current_session(&signed.session.access_token).await;
    assert_eq!(session.ip.as_deref(), Some("198.51.100.7"));
}
