//! A path parameter that cannot be decoded (invalid UTF-8 after percent-decoding) gets the
//! contract's JSON error, not the framework's plain-text rejection.

use crate::helpers::{assert_error, spawn_app, unique_email};
use app::api::ErrorCode;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn an_undecodable_session_id_is_a_json_404() {
    let app = spawn_app().await;
    let person = app.register(&unique_email()).await;
    let response = app
        .client
        .delete(app.url("/api/sessions/%FF"))
        .bearer_auth(&person.session.access_token)
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
    // The person's session was not touched.
    let response = app.me_raw(&person.session.access_token).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_undecodable_user_id_is_a_json_404_on_admin_routes() {
    let app = spawn_app().await;
    let root = app.admin().await;
    let token = &root.session.access_token;
    let response = app
        .client
        .patch(app.url("/api/admin/users/%FF%FE"))
        .bearer_auth(token)
        .json(&json!({"active": false}))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
    let response = app
        .client
        .post(app.url("/api/admin/users/%C3%28/revoke-sessions"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
}

/// The identity-provider routes too: an undecodable provider id is a JSON 404, and a query
/// string that cannot be read (a parameter given twice) a JSON 400, never plain text.
#[tokio::test]
async fn the_identity_provider_routes_answer_unreadable_requests_in_json() {
    let app = spawn_app().await;
    let person = app.register(&unique_email()).await;
    let token = &person.session.access_token;
    let unlink = app
        .client
        .delete(app.url("/api/me/identities/%FF"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_error(unlink, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
    let link = app
        .client
        .post(app.url("/api/auth/oidc/%FF/link"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_error(link, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
    for path in ["/api/auth/oidc/%FF/start", "/api/auth/oidc/%FF/callback"] {
        let response = app.get(path).await;
        assert_error(response, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
    }
    for path in [
        "/api/auth/oidc/test/start?next=/a&next=/b",
        "/api/auth/oidc/test/callback?state=a&state=b",
    ] {
        let response = app.get(path).await;
        assert_error(
            response,
            StatusCode::BAD_REQUEST,
            ErrorCode::ValidationFailed,
        )
        .await;
    }
}
