//! Email verification by OTP, with the code read from a real SMTP server (maildev).

use crate::{
    helpers::{assert_error, spawn_app_with_mail, unique_email, Signed, TestApp, PASSWORD},
    mailbox::{code_in, mail_server},
};
use app::api::{ErrorCode, User};
use reqwest::StatusCode;
use serde_json::json;

async fn verify(app: &TestApp, signed: &Signed, code: &str) -> reqwest::Response {
    app.bearer_post(
        "/api/auth/verify-email",
        &signed.session.access_token,
        json!({ "code": code }),
    )
    .await
}

async fn resend(app: &TestApp, signed: &Signed) -> reqwest::Response {
    app.bearer_post(
        "/api/auth/verify-email/resend",
        &signed.session.access_token,
        json!({}),
    )
    .await
}

async fn me(app: &TestApp, signed: &Signed) -> User {
    let response = app.me_raw(&signed.session.access_token).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// A code that is not `code` (same length).
fn other_than(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

#[tokio::test]
async fn registration_mails_a_code_that_verifies_the_email() {
    let app = spawn_app_with_mail(&[]).await;
    let email = unique_email();
    let signed = app.register(&email).await;
    assert!(!signed.session.user.email_verified);

    let mail = mail_server().nth_message_to(&email, 1).await;
    assert_eq!(
        mail.from[0].address, "tests@example.com",
        "MAIL_FROM is used"
    );
    let code = code_in(&mail);
    assert!(mail.text.contains("10 minutes"), "{}", mail.text);

    let response = verify(&app, &signed, &code).await;
    assert_eq!(response.status(), StatusCode::OK);
    let user: User = response.json().await.unwrap();
    assert!(user.email_verified);
    assert!(me(&app, &signed).await.email_verified, "seen at once");

    // Again: still verified (whatever is sent), nothing to resend.
    assert_eq!(verify(&app, &signed, &code).await.status(), StatusCode::OK);
    assert_eq!(verify(&app, &signed, "x").await.status(), StatusCode::OK);
    assert_error(
        resend(&app, &signed).await,
        StatusCode::CONFLICT,
        ErrorCode::AlreadyVerified,
    )
    .await;
    let logged: i64 =
        sqlx::query_scalar("select count(*) from audit_log where action = 'email_verified'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert_eq!(logged, 1);
}

#[tokio::test]
async fn codes_are_stored_only_as_keyed_digests() {
    let app = spawn_app_with_mail(&[]).await;
    let email = unique_email();
    app.register(&email).await;
    let code = code_in(&mail_server().nth_message_to(&email, 1).await);
    let stored: Vec<String> = sqlx::query_scalar("select code_digest from email_codes")
        .fetch_all(app.db.pool())
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains(&code));
    use sha2::{Digest, Sha256};
    let plain = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        Sha256::digest(code.as_bytes()),
    );
    assert_ne!(stored[0], plain, "not an unkeyed hash");
}

#[tokio::test]
async fn five_wrong_codes_use_the_code_up() {
    let app = spawn_app_with_mail(&[]).await;
    let email = unique_email();
    let signed = app.register(&email).await;
    let code = code_in(&mail_server().nth_message_to(&email, 1).await);
    let wrong = other_than(&code);
    for left in (1..=4).rev() {
        let body = assert_error(
            verify(&app, &signed, &wrong).await,
            StatusCode::BAD_REQUEST,
            ErrorCode::CodeInvalid,
        )
        .await;
        assert!(
            body.error.message.contains(&format!("{left} attempt")),
            "{}",
            body.error.message
        );
    }
    assert_error(
        verify(&app, &signed, &wrong).await,
        StatusCode::BAD_REQUEST,
        ErrorCode::CodeAttemptsExceeded,
    )
    .await;
    assert_error(
        verify(&app, &signed, &code).await,
        StatusCode::BAD_REQUEST,
        ErrorCode::CodeAttemptsExceeded,
    )
    .await;
    assert!(!me(&app, &signed).await.email_verified);

    // A new code starts afresh.
    app.clock.advance(60);
    assert_eq!(resend(&app, &signed).await.status(), StatusCode::ACCEPTED);
    let fresh = code_in(&mail_server().nth_message_to(&email, 2).await);
    assert_eq!(verify(&app, &signed, &fresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_code_expires_after_ten_minutes() {
    let app = spawn_app_with_mail(&[]).await;
    let email = unique_email();
    let signed = app.register(&email).await;
    let code = code_in(&mail_server().nth_message_to(&email, 1).await);
    // Ten minutes on, the access token (15 minutes) still works; the code does not.
    app.clock.advance(600);
    assert_error(
        verify(&app, &signed, &code).await,
        StatusCode::BAD_REQUEST,
        ErrorCode::CodeExpired,
    )
    .await;
}

#[tokio::test]
async fn resend_waits_a_minute_and_replaces_the_code() {
    let app = spawn_app_with_mail(&[]).await;
    let email = unique_email();
    let signed = app.register(&email).await;
    let first = code_in(&mail_server().nth_message_to(&email, 1).await);

    let response = resend(&app, &signed).await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_error(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
    )
    .await;

    app.clock.advance(60);
    assert_eq!(resend(&app, &signed).await.status(), StatusCode::ACCEPTED);
    let second = code_in(&mail_server().nth_message_to(&email, 2).await);
    if second != first {
        assert_error(
            verify(&app, &signed, &first).await,
            StatusCode::BAD_REQUEST,
            ErrorCode::CodeInvalid,
        )
        .await;
    }
    assert_eq!(
        verify(&app, &signed, &second).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn resend_has_an_hourly_budget_when_throttling_is_on() {
    let app = spawn_app_with_mail(&[("RATE_LIMIT_ENABLED", "true")]).await;
    let signed = app.register(&unique_email()).await;
    for _ in 0..5 {
        app.clock.advance(60);
        assert_eq!(resend(&app, &signed).await.status(), StatusCode::ACCEPTED);
    }
    app.clock.advance(60);
    assert_error(
        resend(&app, &signed).await,
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
    )
    .await;
}

#[tokio::test]
async fn malformed_codes_and_missing_tokens_are_refused() {
    let app = spawn_app_with_mail(&[]).await;
    let signed = app.register(&unique_email()).await;
    for bad in ["", "12345", "12a456", "1234567"] {
        let body = assert_error(
            verify(&app, &signed, bad).await,
            StatusCode::BAD_REQUEST,
            ErrorCode::ValidationFailed,
        )
        .await;
        assert!(body.error.fields.unwrap().contains_key("code"));
    }
    let response = app
        .post_json("/api/auth/verify-email", json!({"code": "123456"}))
        .await;
    assert_error(response, StatusCode::UNAUTHORIZED, ErrorCode::TokenMissing).await;
}

#[tokio::test]
async fn require_verified_email_lets_people_sign_in_but_not_use_the_api() {
    let app = spawn_app_with_mail(&[("REQUIRE_VERIFIED_EMAIL", "true")]).await;
    let email = unique_email();
    app.register(&email).await;
    let signed = app.login(&email).await;
    assert!(!me(&app, &signed).await.email_verified, "/api/me answers");
    let sessions = || async {
        app.client
            .get(app.url("/api/sessions"))
            .bearer_auth(&signed.session.access_token)
            .send()
            .await
            .unwrap()
    };
    assert_error(
        sessions().await,
        StatusCode::FORBIDDEN,
        ErrorCode::EmailUnverified,
    )
    .await;
    let change = app
        .bearer_post(
            "/api/auth/password/change",
            &signed.session.access_token,
            json!({"current_password": PASSWORD, "new_password": "another long one"}),
        )
        .await;
    assert_error(change, StatusCode::FORBIDDEN, ErrorCode::EmailUnverified).await;

    let code = code_in(&mail_server().nth_message_to(&email, 1).await);
    assert_eq!(verify(&app, &signed, &code).await.status(), StatusCode::OK);
    assert_eq!(
        sessions().await.status(),
        StatusCode::OK,
        "the same token now works"
    );
}

#[tokio::test]
async fn without_the_setting_unverified_people_use_the_api() {
    let app = spawn_app_with_mail(&[]).await;
    let signed = app.register(&unique_email()).await;
    let response = app
        .client
        .get(app.url("/api/sessions"))
        .bearer_auth(&signed.session.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn new_codes_do_not_renew_the_day_s_tries() {
    let app = spawn_app_with_mail(&[]).await;
    let email = unique_email();
    let signed = app.register(&email).await;
    // Four codes, five wrong tries each: the day's twenty.
    for n in 1..=4 {
        if n > 1 {
            app.clock.advance(60);
            assert_eq!(resend(&app, &signed).await.status(), StatusCode::ACCEPTED);
        }
        let code = code_in(&mail_server().nth_message_to(&email, n).await);
        for _ in 0..5 {
            let response = verify(&app, &signed, &other_than(&code)).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        }
    }
    app.clock.advance(60);
    assert_eq!(resend(&app, &signed).await.status(), StatusCode::ACCEPTED);
    let code = code_in(&mail_server().nth_message_to(&email, 5).await);
    let response = verify(&app, &signed, &code).await;
    assert!(response.headers().contains_key("retry-after"));
    assert_error(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
    )
    .await;
    // A day after the first try (signed in anew), the right code works again.
    app.clock.advance(24 * 3600);
    let signed = app.login(&email).await;
    assert_eq!(resend(&app, &signed).await.status(), StatusCode::ACCEPTED);
    let code = code_in(&mail_server().nth_message_to(&email, 6).await);
    assert_eq!(verify(&app, &signed, &code).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn parallel_resends_send_one_code() {
    let app = spawn_app_with_mail(&[]).await;
    let email = unique_email();
    let signed = app.register(&email).await;
    mail_server().nth_message_to(&email, 1).await;
    app.clock.advance(60);
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let request = app
                .client
                .post(app.url("/api/auth/verify-email/resend"))
                .bearer_auth(&signed.session.access_token)
                .json(&json!({}));
            tokio::spawn(async move { request.send().await.unwrap().status() })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let accepted = statuses
        .iter()
        .filter(|s| **s == StatusCode::ACCEPTED)
        .count();
    assert_eq!(accepted, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::ACCEPTED || *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
}

/// A code tried, or asked for again, while another write holds SQLite's one writer past
/// the write turn's wait: the answer is 503 `overloaded`, as for every other write, not a
/// 500 from SQLite's "database is locked".
#[tokio::test]
async fn verifying_or_resending_while_the_writer_is_busy_answers_overloaded() {
    let app = spawn_app_with_mail(&[]).await;
    // PostgreSQL has no single writer: there a held transaction blocks nobody.
    if app.db.backend() == server::db::Backend::Postgres {
        return;
    }
    let signed = app.register(&unique_email()).await;
    app.clock.advance(61);
    let held = app.db.begin_write().await.unwrap();
    let (tried, resent) = tokio::join!(verify(&app, &signed, "123456"), resend(&app, &signed));
    drop(held);
    for response in [tried, resent] {
        let status = response.status();
        assert!(response.headers().contains_key("retry-after"), "{status}");
        assert_error(
            response,
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Overloaded,
        )
        .await;
    }
}
