use crate::helpers::{assert_error, spawn_app};
use app::api::ErrorCode;
use reqwest::StatusCode;

#[tokio::test]
async fn unknown_api_routes_are_404_json() {
    let app = spawn_app().await;
    for path in ["/api/nope", "/api/auth/nope", "/api/"] {
        let response = app.get(path).await;
        assert_error(response, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
    }
    let response = app.client.post(app.url("/api/nope")).send().await.unwrap();
    assert_error(response, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
}

#[tokio::test]
async fn wrong_methods_are_405_json() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let response = app.client.post(app.url(path)).send().await.unwrap();
        assert_error(
            response,
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
        )
        .await;
    }
}

#[tokio::test]
async fn bodies_over_64_kib_are_413_json() {
    let app = spawn_app().await;
    let body = format!("{{\"email\":\"{}\"}}", "a".repeat(64 * 1024));
    let response = app
        .client
        .post(app.url("/api/auth/login"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_error(
        response,
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
    )
    .await;
}

#[tokio::test]
async fn a_body_just_under_the_limit_is_not_refused_for_size() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/nope"))
        .header("content-type", "application/json")
        .body("x".repeat(64 * 1024))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
}

#[tokio::test]
async fn unknown_pages_are_html_404() {
    let app = spawn_app().await;
    let response = app.get("/no-such-page").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let text = response.text().await.unwrap();
    assert!(text.contains("Page not found"), "{text}");
}

#[tokio::test]
async fn every_endpoint_of_the_shared_table_is_routed_with_its_method() {
    // The browser client calls these; the server must answer each (whatever the answer),
    // never with the unknown route's 404 or a 405.
    let app = crate::helpers::spawn_app().await;
    for route in app::api::endpoints::ALL {
        let path = route
            .path
            .replace("{id}", "00000000-0000-4000-8000-000000000000");
        let method = reqwest::Method::from_bytes(route.method.as_str().as_bytes()).unwrap();
        let response = app
            .client
            .request(method, app.url(&path))
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!(
            status != reqwest::StatusCode::NOT_FOUND
                && status != reqwest::StatusCode::METHOD_NOT_ALLOWED,
            "{} {} {}: {status}",
            route.name,
            route.method.as_str(),
            route.path
        );
    }
}
