//! The request guards on routes of one's own, next to the built-in ones.

use crate::helpers::{spawn_app, unique_email};
use axum::{body::Body, http::Request, routing::get, Router};
use reqwest::StatusCode;
use server::{
    db::users,
    routes::extract::{Admin, MaybeAuthUser, RequireRole},
};
use tower::ServiceExt;

async fn call(router: &Router, path: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut request = Request::builder().uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    (
        StatusCode::from_u16(status.as_u16()).unwrap(),
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn require_role_and_maybe_auth_user() {
    let app = spawn_app().await;
    let user = app.register(&unique_email()).await;
    let admin_email = unique_email();
    let admin = app.register(&admin_email).await;
    users::set_role(
        app.db.pool(),
        &admin.session.user.id,
        server::db::users::Role::Admin,
        0,
    )
    .await
    .unwrap();
    let admin = app.login(&admin_email).await;

    let router = Router::new()
        .route(
            "/admin",
            get(|RequireRole(who, _): RequireRole<Admin>| async move { who.user_id().to_string() }),
        )
        .route(
            "/maybe",
            get(|MaybeAuthUser(who): MaybeAuthUser| async move {
                who.map_or("anonymous".to_string(), |u| u.user_id().to_string())
            }),
        )
        .with_state(app.state.clone());

    let (status, body) = call(&router, "/admin", Some(&admin.session.access_token)).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, admin.session.user.id.as_str())
    );
    let (status, body) = call(&router, "/admin", Some(&user.session.access_token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("\"forbidden\""), "{body}");
    let (status, body) = call(&router, "/admin", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("token_missing"), "{body}");

    assert_eq!(
        call(&router, "/maybe", None).await,
        (StatusCode::OK, "anonymous".into())
    );
    assert_eq!(
        call(&router, "/maybe", Some(&user.session.access_token)).await,
        (StatusCode::OK, user.session.user.id.clone())
    );
    let (status, body) = call(&router, "/maybe", Some("forged")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("token_invalid"), "{body}");
}

#[tokio::test]
async fn disabling_or_demoting_takes_effect_at_once_on_this_instance() {
    let app = spawn_app().await;
    let email = unique_email();
    let person = app.register(&email).await;
    let id = person.session.user.id.clone();
    users::set_role(app.db.pool(), &id, server::db::users::Role::Admin, 0)
        .await
        .unwrap();
    app.state.core.users.evict(&id);
    let admin = app.login(&email).await;
    assert_eq!(
        app.me_raw(&admin.session.access_token).await.status(),
        reqwest::StatusCode::OK
    );

    // Demoted: the admin token stops working at the next request.
    users::set_role(app.db.pool(), &id, server::db::users::Role::User, 0)
        .await
        .unwrap();
    app.state.core.users.evict(&id);
    let response = app.me_raw(&admin.session.access_token).await;
    assert_eq!(response.status(), reqwest::StatusCode::UNAUTHORIZED);
    assert!(response.text().await.unwrap().contains("token_invalid"));

    // Disabled: every token stops working; refresh says why.
    let user = app.login(&email).await;
    users::set_active(app.db.pool(), &id, false, 0)
        .await
        .unwrap();
    app.state.core.users.evict(&id);
    let response = app.me_raw(&user.session.access_token).await;
    assert_eq!(response.status(), reqwest::StatusCode::UNAUTHORIZED);
    let response = app.refresh_raw(&user.refresh_token()).await;
    assert_eq!(response.status(), reqwest::StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("account_disabled"));
}

#[tokio::test]
async fn another_instance_sees_the_change_within_the_cache_lifetime() {
    // A change written to the database by another instance (no eviction here) is seen
    // once the cached row is older than its lifetime, well within 60 seconds.
    let app = spawn_app().await;
    let email = unique_email();
    let person = app.register(&email).await;
    let token = person.session.access_token.clone();
    assert_eq!(app.me_raw(&token).await.status(), reqwest::StatusCode::OK);
    users::set_active(app.db.pool(), &person.session.user.id, false, 0)
        .await
        .unwrap();
    assert_eq!(
        app.me_raw(&token).await.status(),
        reqwest::StatusCode::OK,
        "cached"
    );
    app.clock.advance(server::service::user_cache::TTL_SECS);
    assert_eq!(
        app.me_raw(&token).await.status(),
        reqwest::StatusCode::UNAUTHORIZED
    );
}
