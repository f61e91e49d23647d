use crate::helpers::{assert_error, spawn_app};
use app::api::{ErrorCode, Health};
use reqwest::StatusCode;

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Health = response.json().await.unwrap();
    assert_eq!(body.status, "ok");
}

#[tokio::test]
async fn healthz_does_not_need_the_database() {
    let app = spawn_app().await;
    app.db.close().await;
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn readyz_answers_when_the_database_does() {
    let app = spawn_app().await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Health = response.json().await.unwrap();
    assert_eq!(body.status, "ready");
}

#[tokio::test]
async fn readyz_is_503_when_the_database_is_unreachable() {
    let app = spawn_app().await;
    app.db.close().await;
    let response = app.get("/readyz").await;
    assert_error(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Unavailable,
    )
    .await;
}
