use crate::helpers::spawn_app;
use reqwest::StatusCode;

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("missing {name}"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn pages_carry_a_nonce_csp_that_matches_their_scripts() {
    let app = spawn_app().await;
    let response = app.get("/").await;
    assert_eq!(response.status(), StatusCode::OK);
    let csp = header(&response, "content-security-policy").to_string();
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    assert_eq!(header(&response, "referrer-policy"), "no-referrer");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");

    let nonce = csp
        .split_once("'nonce-")
        .and_then(|(_, rest)| rest.split_once('\''))
        .map(|(nonce, _)| nonce.to_string())
        .expect("script-src has a nonce");
    assert!(nonce.len() >= 16, "nonce too short: {nonce}");

    let html = response.text().await.unwrap();
    let scripts = html.matches("<script").count();
    assert!(scripts >= 1, "{html}");
    assert_eq!(
        html.matches(&format!("nonce=\"{nonce}\"")).count(),
        scripts,
        "every script carries the nonce: {html}"
    );
    // The server never knows the session: a neutral header, no signed-out links.
    assert!(html.contains(r#"class="nav-pending""#), "{html}");
    assert!(
        !html.contains("Log in") && !html.contains("Create account"),
        "{html}"
    );
}

#[tokio::test]
async fn each_page_load_gets_a_new_nonce() {
    let app = spawn_app().await;
    let a = app.get("/").await;
    let b = app.get("/").await;
    assert_ne!(
        a.headers().get("content-security-policy"),
        b.headers().get("content-security-policy")
    );
}

#[tokio::test]
async fn api_and_health_responses_carry_strict_headers() {
    let app = spawn_app().await;
    for path in ["/healthz", "/api/nope"] {
        let response = app.get(path).await;
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert_eq!(header(&response, "referrer-policy"), "no-referrer");
        assert_eq!(
            header(&response, "content-security-policy"),
            "default-src 'none'; frame-ancestors 'none'"
        );
    }
}

#[tokio::test]
async fn every_answer_about_someone_is_no_store() {
    let app = crate::helpers::spawn_app().await;
    let admin = app.admin().await;
    let token = admin.session.access_token.as_str();
    let id = admin.session.user.id.as_str();
    let get = |path: &'static str| app.client.get(app.url(path)).bearer_auth(token).send();
    let answers = [
        ("GET /api/me", get("/api/me").await.unwrap()),
        ("GET /api/sessions", get("/api/sessions").await.unwrap()),
        (
            "GET /api/admin/users",
            get("/api/admin/users").await.unwrap(),
        ),
        (
            "GET /api/admin/audit",
            get("/api/admin/audit").await.unwrap(),
        ),
        (
            "PATCH /api/admin/users/{id}",
            app.client
                .patch(app.url(&format!("/api/admin/users/{id}")))
                .bearer_auth(token)
                .json(&serde_json::json!({}))
                .send()
                .await
                .unwrap(),
        ),
        (
            "POST /api/auth/verify-email",
            app.bearer_post(
                "/api/auth/verify-email",
                token,
                serde_json::json!({"code": "123456"}),
            )
            .await,
        ),
        (
            "POST /api/auth/refresh",
            app.refresh_raw(&admin.refresh_token()).await,
        ),
    ];
    for (route, response) in answers {
        assert_eq!(
            response
                .headers()
                .get("cache-control")
                .and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "{route} answered {}",
            response.status()
        );
    }
}
