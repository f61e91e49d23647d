//! Password reset by an emailed link, read from a real SMTP server (maildev).

use crate::{
    helpers::{assert_error, spawn_app_with_mail, unique_email, TestApp, PASSWORD},
    mailbox::{mail_server, reset_token_in},
};
use app::api::{ErrorCode, User};
use reqwest::StatusCode;
use serde_json::json;

const NEW_PASSWORD: &str = "a brand new passphrase";

async fn forgot(app: &TestApp, email: &str) -> reqwest::Response {
    app.post_json("/api/auth/password/forgot", json!({ "email": email }))
        .await
}

async fn reset(app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    app.post_json(
        "/api/auth/password/reset",
        json!({ "token": token, "password": password }),
    )
    .await
}

/// Asks for a reset link for `email` and sets `password` with the token mailed to it.
pub(crate) async fn reset_by_mail(app: &TestApp, email: &str, password: &str) {
    assert_eq!(forgot(app, email).await.status(), StatusCode::ACCEPTED);
    let mail = mail_server()
        .nth_with_subject(email, "Reset your password", 1)
        .await;
    assert_eq!(
        reset(app, &reset_token_in(&mail), password).await.status(),
        StatusCode::NO_CONTENT
    );
}

/// Registers a person, asks for a reset link and returns the token mailed to them.
async fn person_with_link(app: &TestApp) -> (String, crate::helpers::Signed, String) {
    let email = unique_email();
    let signed = app.register(&email).await;
    assert_eq!(forgot(app, &email).await.status(), StatusCode::ACCEPTED);
    let mail = mail_server()
        .nth_with_subject(&email, "Reset your password", 1)
        .await;
    (email, signed, reset_token_in(&mail))
}

#[tokio::test]
async fn a_mailed_link_resets_the_password_and_ends_every_session() {
    let app = spawn_app_with_mail(&[]).await;
    let (email, first, token) = person_with_link(&app).await;
    let second = app.login(&email).await;
    // Tokens issued before the reset's second stop working (the epoch has whole seconds).
    app.clock.advance(1);
    assert_eq!(
        reset(&app, &token, NEW_PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );

    // Both sessions are over: refresh tokens and access tokens alike.
    for signed in [&first, &second] {
        let refreshed = app.refresh_raw(&signed.refresh_token()).await;
        assert_eq!(refreshed.status(), StatusCode::UNAUTHORIZED);
        assert_error(
            app.me_raw(&signed.session.access_token).await,
            StatusCode::UNAUTHORIZED,
            ErrorCode::TokenInvalid,
        )
        .await;
    }
    assert_error(
        app.login_raw(&email, PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        ErrorCode::InvalidCredentials,
    )
    .await;
    let fresh = app.login_raw(&email, NEW_PASSWORD).await;
    assert_eq!(fresh.status(), StatusCode::OK);
    let session: app::api::Session = fresh.json().await.unwrap();
    assert!(
        session.user.email_verified,
        "the mailed link proved the address"
    );

    // The link works once.
    assert_error(
        reset(&app, &token, "yet another passphrase").await,
        StatusCode::BAD_REQUEST,
        ErrorCode::ResetTokenInvalid,
    )
    .await;
    let actions: Vec<String> =
        sqlx::query_scalar("select action from audit_log where action like 'password_reset%'")
            .fetch_all(app.db.pool())
            .await
            .unwrap();
    assert_eq!(actions.len(), 2, "{actions:?}");
    let details: Vec<Option<String>> = sqlx::query_scalar("select detail from audit_log")
        .fetch_all(app.db.pool())
        .await
        .unwrap();
    for detail in details.into_iter().flatten() {
        assert!(
            !detail.contains(&token) && !detail.contains(NEW_PASSWORD),
            "{detail}"
        );
    }
}

#[tokio::test]
async fn links_expire_after_thirty_minutes() {
    let app = spawn_app_with_mail(&[]).await;
    let (_, _, token) = person_with_link(&app).await;
    app.clock.advance(30 * 60);
    assert_error(
        reset(&app, &token, NEW_PASSWORD).await,
        StatusCode::BAD_REQUEST,
        ErrorCode::ResetTokenExpired,
    )
    .await;
}

#[tokio::test]
async fn links_are_stored_only_as_hashes() {
    let app = spawn_app_with_mail(&[]).await;
    let (_, _, token) = person_with_link(&app).await;
    let stored: Vec<String> = sqlx::query_scalar("select token_hash from password_resets")
        .fetch_all(app.db.pool())
        .await
        .unwrap();
    assert_eq!(stored, vec![server::auth::tokens::hash(&token)]);
}

#[tokio::test]
async fn unknown_addresses_get_the_same_answer_and_no_mail() {
    let app = spawn_app_with_mail(&[]).await;
    let known = unique_email();
    app.register(&known).await;
    let unknown = unique_email();

    let a = forgot(&app, &unknown).await;
    let b = forgot(&app, &known).await;
    assert_eq!(a.status(), StatusCode::ACCEPTED);
    assert_eq!(b.status(), StatusCode::ACCEPTED);
    assert_eq!(a.text().await.unwrap(), b.text().await.unwrap());

    // The known address gets its link; by then the unknown one's lookup (asked first) is
    // long done, and it sent nothing.
    mail_server()
        .nth_with_subject(&known, "Reset your password", 1)
        .await;
    assert!(mail_server().messages_to(&unknown).await.is_empty());
}

#[tokio::test]
async fn bad_requests_are_refused() {
    let app = spawn_app_with_mail(&[]).await;
    let body = assert_error(
        forgot(&app, "not an email").await,
        StatusCode::BAD_REQUEST,
        ErrorCode::ValidationFailed,
    )
    .await;
    assert!(body.error.fields.unwrap().contains_key("email"));
    let (_, _, token) = person_with_link(&app).await;
    let body = assert_error(
        reset(&app, &token, "short").await,
        StatusCode::BAD_REQUEST,
        ErrorCode::ValidationFailed,
    )
    .await;
    assert!(body.error.fields.unwrap().contains_key("password"));
    assert_error(
        reset(&app, "not-a-token", NEW_PASSWORD).await,
        StatusCode::BAD_REQUEST,
        ErrorCode::ResetTokenInvalid,
    )
    .await;
    // The refused attempts did not use the link up.
    assert_eq!(
        reset(&app, &token, NEW_PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn asking_for_links_is_throttled_per_address() {
    let app = spawn_app_with_mail(&[("RATE_LIMIT_ENABLED", "true")]).await;
    let email = unique_email();
    for _ in 0..3 {
        assert_eq!(forgot(&app, &email).await.status(), StatusCode::ACCEPTED);
    }
    let response = forgot(&app, &email).await;
    assert!(response.headers().contains_key("retry-after"));
    assert_error(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
    )
    .await;
    // Another address is not affected.
    assert_eq!(
        forgot(&app, &unique_email()).await.status(),
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn a_disabled_account_gets_no_link() {
    let app = spawn_app_with_mail(&[]).await;
    let email = unique_email();
    let signed = app.register(&email).await;
    let user: User = signed.session.user.clone();
    server::db::users::set_active(app.db.pool(), &user.id, false, app.clock.now_unix())
        .await
        .unwrap();
    assert_eq!(forgot(&app, &email).await.status(), StatusCode::ACCEPTED);
    // Another person's link arriving shows the background work has run.
    let (other, _, _) = person_with_link(&app).await;
    let _ = other;
    assert_eq!(
        mail_server().messages_to(&email).await.len(),
        1,
        "only the code"
    );
}

#[tokio::test]
async fn a_link_sent_before_the_account_was_disabled_does_not_work() {
    let app = spawn_app_with_mail(&[]).await;
    let (_, signed, token) = person_with_link(&app).await;
    server::db::users::set_active(
        app.db.pool(),
        &signed.session.user.id,
        false,
        app.clock.now_unix(),
    )
    .await
    .unwrap();
    assert_error(
        reset(&app, &token, NEW_PASSWORD).await,
        StatusCode::BAD_REQUEST,
        ErrorCode::ResetTokenInvalid,
    )
    .await;
}

#[tokio::test]
async fn a_reset_proving_the_address_removes_a_second_factor_set_up_before() {
    let app = spawn_app_with_mail(&[]).await;
    // Someone registered the address (never proving it) and turned on a second factor.
    let squatter = crate::mfa::enrolled(&app).await;
    // The owner, reading their mail, sets a password: the squatter's code is not asked.
    reset_by_mail(&app, &squatter.email, NEW_PASSWORD).await;
    let response = app.login_raw(&squatter.email, NEW_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let (left,): (i64,) = sqlx::query_as("select count(*) from totp_secrets")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn a_reset_of_a_proven_address_keeps_the_second_factor() {
    let app = spawn_app_with_mail(&[]).await;
    let person = crate::mfa::enrolled(&app).await;
    let user = server::db::users::find_by_email(app.db.pool(), &person.email)
        .await
        .unwrap()
        .unwrap();
    server::db::users::mark_email_verified(app.db.pool(), &user.id, 0)
        .await
        .unwrap();
    reset_by_mail(&app, &person.email, NEW_PASSWORD).await;
    let response = app.login_raw(&person.email, NEW_PASSWORD).await;
    assert_error(response, StatusCode::UNAUTHORIZED, ErrorCode::MfaRequired).await;
}
