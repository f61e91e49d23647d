use crate::helpers::{
    assert_error, refresh_cookie, signed, spawn_app, spawn_app_with, unique_email, PASSWORD,
};
use app::api::{ErrorCode, Role};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn register_answers_201_with_a_session_and_the_refresh_cookie() {
    let app = spawn_app().await;
    let email = unique_email();
    let response = app
        .register_raw(&format!("  {email} "), PASSWORD, "  Ada Lovelace ")
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let signed = signed(response).await;
    let s = &signed.session;
    assert_eq!(s.token_type, "Bearer");
    assert_eq!(s.expires_in, 900);
    assert_eq!(s.refresh_token, None, "never in the body for a browser");
    assert_eq!(s.user.email, email);
    assert_eq!(s.user.name, "Ada Lovelace");
    assert_eq!(s.user.role, Role::User);
    assert!(!s.user.email_verified);
    assert!(uuid::Uuid::parse_str(&s.user.id).is_ok());
    assert!(time::OffsetDateTime::parse(
        &s.user.created_at,
        &time::format_description::well_known::Rfc3339
    )
    .is_ok());

    let cookie = signed.cookie.expect("refresh cookie");
    assert!(cookie.value.len() >= 43, "at least 256 bits");
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/api/auth",
        "Max-Age=1209600",
    ] {
        assert!(
            cookie.attributes.iter().any(|a| a == attribute),
            "{attribute} in {}",
            cookie.raw
        );
    }

    // The access token works at once.
    let me = app.me_raw(&s.access_token).await;
    assert_eq!(me.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_cookie_drops_secure_only_when_configured() {
    let app = spawn_app_with(&[("COOKIE_SECURE", "false")]).await;
    let signed = app.register(&unique_email()).await;
    let cookie = signed.cookie.unwrap();
    assert!(
        !cookie.attributes.iter().any(|a| a == "Secure"),
        "{}",
        cookie.raw
    );
    assert!(cookie.attributes.iter().any(|a| a == "HttpOnly"));
}

#[tokio::test]
async fn emails_are_taken_case_insensitively() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email).await;
    let response = app
        .register_raw(&email.to_uppercase(), PASSWORD, "Other")
        .await;
    assert_error(response, StatusCode::CONFLICT, ErrorCode::EmailTaken).await;
}

#[tokio::test]
async fn the_validation_table() {
    let app = spawn_app().await;
    let long_name = "n".repeat(101);
    let long_password = "p".repeat(129);
    let cases: Vec<(&str, &str, &str, &[&str])> = vec![
        ("not-an-email", PASSWORD, "Ada", &["email"]),
        ("", PASSWORD, "Ada", &["email"]),
        ("a@b", PASSWORD, "Ada", &["email"]),
        ("ada@example.com", "short", "Ada", &["password"]),
        ("ada@example.com", &long_password, "Ada", &["password"]),
        ("ada@example.com", PASSWORD, "   ", &["name"]),
        ("ada@example.com", PASSWORD, &long_name, &["name"]),
        ("bad", "x", "", &["email", "name", "password"]),
    ];
    for (email, password, name, fields) in cases {
        let response = app.register_raw(email, password, name).await;
        let body = assert_error(
            response,
            StatusCode::BAD_REQUEST,
            ErrorCode::ValidationFailed,
        )
        .await;
        let got: Vec<&str> = body
            .error
            .fields
            .as_ref()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(got, fields, "{email:?} {password:?} {name:?}");
    }
    // Edges that pass: 8 and 128 scalar values (not bytes), spaces kept, 100-char name.
    let ok = [
        ("a1@example.com", "ééééééé😀".to_string(), "x".repeat(100)),
        ("a2@example.com", "😀".repeat(128), "Ada".to_string()),
        ("a3@example.com", "       8".to_string(), "Ada".to_string()),
    ];
    for (email, password, name) in ok {
        let response = app.register_raw(email, &password, &name).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{email}");
    }
    // The password is not trimmed: the one with spaces logs in only with them.
    assert_eq!(
        app.login_raw("a3@example.com", "8").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn body_delivery_is_honoured_for_non_browser_clients() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/auth/register"))
        .header("x-refresh-token-delivery", "body")
        .json(&json!({"email": unique_email(), "password": PASSWORD, "name": "Bot"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        refresh_cookie(response.headers()),
        None,
        "no cookie with body delivery"
    );
    let signed = signed(response).await;
    let token = signed
        .session
        .refresh_token
        .expect("refresh_token in the body");
    assert_eq!(token.len(), 43);
}

#[tokio::test]
async fn malformed_json_and_wrong_content_types_are_invalid_json() {
    let app = spawn_app().await;
    for (content_type, body) in [
        ("application/json", "{\"email\": "),
        ("application/json", "[]"),
        ("application/json", "{\"email\": \"a@b.co\"}"),
        (
            "text/plain",
            "{\"email\":\"a@b.co\",\"password\":\"12345678\",\"name\":\"A\"}",
        ),
    ] {
        for path in ["/api/auth/register", "/api/auth/login"] {
            let response = app
                .client
                .post(app.url(path))
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_error(response, StatusCode::BAD_REQUEST, ErrorCode::InvalidJson).await;
        }
    }
    let response = app
        .client
        .post(app.url("/api/auth/login"))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, ErrorCode::InvalidJson).await;
}
