//! `POST /api/auth/password/change`.

use crate::helpers::{
    assert_error, assert_error_clearing, spawn_app, unique_email, TestApp, PASSWORD,
};
use app::api::ErrorCode;
use reqwest::{Response, StatusCode};
use serde_json::json;

async fn change(app: &TestApp, access_token: &str, current: &str, new: &str) -> Response {
    app.client
        .post(app.url("/api/auth/password/change"))
        .bearer_auth(access_token)
        .json(&json!({"current_password": current, "new_password": new}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn changing_the_password_ends_every_other_session_and_keeps_this_one() {
    let app = spawn_app().await;
    let email = unique_email();
    let here = app.register(&email).await;
    let elsewhere = app.login(&email).await;
    app.clock.advance(1);
    let response = change(
        &app,
        &here.session.access_token,
        PASSWORD,
        "a brand new password",
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let refused = app.refresh_raw(&elsewhere.refresh_token()).await;
    assert_error_clearing(refused, StatusCode::UNAUTHORIZED, ErrorCode::RefreshInvalid).await;
    // The other session's access token stops working at once, not at its expiry.
    let me = app.me_raw(&elsewhere.session.access_token).await;
    assert_error(me, StatusCode::UNAUTHORIZED, ErrorCode::TokenInvalid).await;
    // This session goes on: one refresh renews its access token.
    let renewed = app.refresh(&here.refresh_token()).await;
    assert_eq!(
        app.me_raw(&renewed.session.access_token).await.status(),
        StatusCode::OK
    );

    let old = app.login_raw(&email, PASSWORD).await;
    assert_error(old, StatusCode::UNAUTHORIZED, ErrorCode::InvalidCredentials).await;
    assert_eq!(
        app.login_raw(&email, "a brand new password").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_current_password_is_required_and_checked() {
    let app = spawn_app().await;
    let here = app.register(&unique_email()).await;
    let wrong = change(
        &app,
        &here.session.access_token,
        "not my password",
        "a brand new password",
    )
    .await;
    assert_error(
        wrong,
        StatusCode::UNAUTHORIZED,
        ErrorCode::InvalidCredentials,
    )
    .await;
    let invalid = change(&app, &here.session.access_token, "", "short").await;
    let body = assert_error(
        invalid,
        StatusCode::BAD_REQUEST,
        ErrorCode::ValidationFailed,
    )
    .await;
    let fields = body.error.fields.unwrap();
    assert!(
        fields.contains_key("current_password") && fields.contains_key("new_password"),
        "{fields:?}"
    );
    let anonymous = app
        .post_json(
            "/api/auth/password/change",
            json!({"current_password": PASSWORD, "new_password": "whatever new"}),
        )
        .await;
    assert_error(anonymous, StatusCode::UNAUTHORIZED, ErrorCode::TokenMissing).await;
}
