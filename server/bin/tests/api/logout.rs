use crate::helpers::{
    assert_error, assert_error_clearing, refresh_cookie, spawn_app, unique_email,
};
use app::api::ErrorCode;
use reqwest::StatusCode;

#[tokio::test]
async fn logout_revokes_the_family_clears_the_cookie_and_is_idempotent() {
    let app = spawn_app().await;
    let first = app.register(&unique_email()).await;
    let second = app.refresh(&first.refresh_token()).await;
    for _ in 0..2 {
        let response = app
            .cookie_post("/api/auth/logout", Some(&second.refresh_token()), &[])
            .await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let cookie = refresh_cookie(response.headers()).unwrap();
        assert_eq!(cookie.value, "");
        assert!(cookie.attributes.contains(&"Max-Age=0".into()));
    }
    let response = app.refresh_raw(&second.refresh_token()).await;
    assert_error_clearing(
        response,
        StatusCode::UNAUTHORIZED,
        ErrorCode::RefreshInvalid,
    )
    .await;
    // Without any token it still answers 204.
    let response = app.cookie_post("/api/auth/logout", None, &[]).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn logout_by_bearer_and_an_old_token_of_the_family() {
    let app = spawn_app().await;
    let first = app.register(&unique_email()).await;
    let second = app.refresh(&first.refresh_token()).await;
    let response = app
        .client
        .post(app.url("/api/auth/logout"))
        .bearer_auth(first.refresh_token())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = app.refresh_raw(&second.refresh_token()).await;
    assert_error_clearing(
        response,
        StatusCode::UNAUTHORIZED,
        ErrorCode::RefreshInvalid,
    )
    .await;
}

#[tokio::test]
async fn logout_from_a_foreign_origin_is_refused() {
    let app = spawn_app().await;
    let first = app.register(&unique_email()).await;
    let response = app
        .cookie_post(
            "/api/auth/logout",
            Some(&first.refresh_token()),
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_error(response, StatusCode::FORBIDDEN, ErrorCode::OriginForbidden).await;
    app.refresh(&first.refresh_token()).await;
}
