//! `GET /api/openapi.json`: the document the code makes, the one the repository keeps
//! (`server::openapi` tests the file).

use crate::helpers::spawn_app;
use reqwest::StatusCode;

#[tokio::test]
async fn the_openapi_document_is_served_as_json() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let body = response.text().await.unwrap();
    assert_eq!(body, server::openapi::json());
    let document: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    // Every route of the API is in it, this one too.
    for path in ["/api/auth/login", "/api/sessions/{id}", "/api/openapi.json"] {
        assert!(document["paths"][path].is_object(), "{path} missing");
    }
}
