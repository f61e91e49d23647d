use crate::helpers::{
    assert_error, assert_error_clearing, refresh_cookie, signed, spawn_app, spawn_app_with,
    unique_email,
};
use app::api::ErrorCode;
use reqwest::StatusCode;
use std::collections::HashSet;

#[tokio::test]
async fn refresh_rotates_the_cookie_and_issues_a_new_access_token() {
    let app = spawn_app().await;
    let first = app.register(&unique_email()).await;
    app.clock.advance(60);
    let second = app.refresh(&first.refresh_token()).await;
    assert_ne!(second.refresh_token(), first.refresh_token());
    assert_ne!(second.session.access_token, first.session.access_token);
    assert_eq!(second.session.user, first.session.user);
    assert_eq!(
        second.session.refresh_token, None,
        "a cookie refresh never puts the token in a body"
    );
    let cookie = second.cookie.clone().unwrap();
    assert_eq!(cookie.max_age(), 1_209_600);
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/api/auth"] {
        assert!(
            cookie.attributes.iter().any(|a| a == attribute),
            "{}",
            cookie.raw
        );
    }
    assert_eq!(
        app.me_raw(&second.session.access_token).await.status(),
        StatusCode::OK
    );
    // The chain goes on.
    let third = app.refresh(&second.refresh_token()).await;
    app.refresh(&third.refresh_token()).await;
}

#[tokio::test]
async fn the_cookie_max_age_is_capped_by_the_family_absolute_lifetime() {
    let app = spawn_app_with(&[
        ("AUTH_REFRESH_TTL_SECS", "1000"),
        ("AUTH_SESSION_MAX_SECS", "1500"),
    ])
    .await;
    let first = app.register(&unique_email()).await;
    assert_eq!(first.cookie.as_ref().unwrap().max_age(), 1000);
    app.clock.advance(900);
    let second = app.refresh(&first.refresh_token()).await;
    assert_eq!(second.cookie.as_ref().unwrap().max_age(), 600);
    app.clock.advance(600);
    let expired = app.refresh_raw(&second.refresh_token()).await;
    assert_error_clearing(expired, StatusCode::UNAUTHORIZED, ErrorCode::RefreshExpired).await;
}

#[tokio::test]
async fn idle_expiry() {
    let app = spawn_app_with(&[
        ("AUTH_REFRESH_TTL_SECS", "100"),
        ("AUTH_REFRESH_GRACE_SECS", "10"),
    ])
    .await;
    let first = app.register(&unique_email()).await;
    app.clock.advance(100);
    let response = app.refresh_raw(&first.refresh_token()).await;
    assert_error_clearing(
        response,
        StatusCode::UNAUTHORIZED,
        ErrorCode::RefreshExpired,
    )
    .await;
}

#[tokio::test]
async fn missing_and_unknown_tokens_clear_the_cookie() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/auth/refresh"))
        .send()
        .await
        .unwrap();
    assert_error_clearing(
        response,
        StatusCode::UNAUTHORIZED,
        ErrorCode::RefreshMissing,
    )
    .await;
    for junk in [
        "junk",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "' or 1=1 --",
    ] {
        let response = app.refresh_raw(junk).await;
        assert_error_clearing(
            response,
            StatusCode::UNAUTHORIZED,
            ErrorCode::RefreshInvalid,
        )
        .await;
    }
}

#[tokio::test]
async fn the_parent_replayed_inside_grace_converges_on_the_same_token() {
    let app = spawn_app().await;
    let first = app.register(&unique_email()).await;
    let a = app.refresh(&first.refresh_token()).await;
    app.clock.advance(9);
    let b = app.refresh(&first.refresh_token()).await;
    assert_eq!(
        a.refresh_token(),
        b.refresh_token(),
        "both tabs hold the same newest token"
    );
    assert_ne!(
        a.session.access_token, b.session.access_token,
        "a fresh access token each"
    );
    assert_eq!(b.cookie.unwrap().max_age(), 1_209_600 - 9);
    // The family did not fork: the newest token still rotates.
    app.refresh(&a.refresh_token()).await;
}

#[tokio::test]
async fn the_parent_replayed_after_grace_revokes_the_family_and_its_descendants() {
    let app = spawn_app().await;
    let first = app.register(&unique_email()).await;
    let second = app.refresh(&first.refresh_token()).await;
    app.clock.advance(11);
    let replay = app.refresh_raw(&first.refresh_token()).await;
    assert_error_clearing(replay, StatusCode::UNAUTHORIZED, ErrorCode::RefreshReused).await;
    // The newest token, held by the honest client (or the thief), is dead too.
    let newest = app.refresh_raw(&second.refresh_token()).await;
    assert_error_clearing(newest, StatusCode::UNAUTHORIZED, ErrorCode::RefreshInvalid).await;
    let again = app.refresh_raw(&first.refresh_token()).await;
    assert_error_clearing(again, StatusCode::UNAUTHORIZED, ErrorCode::RefreshInvalid).await;
}

#[tokio::test]
async fn a_grandparent_replayed_inside_grace_revokes_the_family() {
    let app = spawn_app().await;
    let first = app.register(&unique_email()).await;
    let second = app.refresh(&first.refresh_token()).await;
    let third = app.refresh(&second.refresh_token()).await;
    let replay = app.refresh_raw(&first.refresh_token()).await;
    assert_error_clearing(replay, StatusCode::UNAUTHORIZED, ErrorCode::RefreshReused).await;
    let newest = app.refresh_raw(&third.refresh_token()).await;
    assert_error_clearing(newest, StatusCode::UNAUTHORIZED, ErrorCode::RefreshInvalid).await;
}

#[tokio::test]
async fn other_logins_survive_a_revoked_family() {
    let app = spawn_app().await;
    let email = unique_email();
    let laptop = app.register(&email).await;
    let phone = app.login(&email).await;
    app.refresh(&laptop.refresh_token()).await;
    app.clock.advance(30);
    app.refresh_raw(&laptop.refresh_token()).await;
    app.refresh(&phone.refresh_token()).await;
}

#[tokio::test]
async fn fifty_concurrent_refreshes_of_one_token_yield_exactly_one_child() {
    let app = spawn_app().await;
    let first = app.register(&unique_email()).await;
    let token = first.refresh_token();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let client = app.client.clone();
        let url = app.url("/api/auth/refresh");
        let cookie = format!("refresh_token={token}");
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
        }));
    }
    let mut children = HashSet::new();
    for task in tasks {
        let response = task.await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "no 5xx, no reuse: all converge"
        );
        children.insert(signed(response).await.refresh_token());
    }
    assert_eq!(children.len(), 1, "exactly one child");
    let child = children.into_iter().next().unwrap();
    let count: i64 = sqlx::query_scalar("select count(*) from refresh_tokens")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(count, 2, "the first token and its one child");
    app.refresh(&child).await;
}

#[tokio::test]
async fn bearer_refresh_for_non_browser_clients() {
    let app = spawn_app().await;
    let first = app.register(&unique_email()).await;
    let response = app
        .client
        .post(app.url("/api/auth/refresh"))
        .bearer_auth(first.refresh_token())
        .header("x-refresh-token-delivery", "body")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(refresh_cookie(response.headers()), None);
    let second = signed(response).await;
    let token = second
        .session
        .refresh_token
        .clone()
        .expect("token in the body");
    // Without the delivery header a bearer refresh gets the cookie.
    let third = app
        .client
        .post(app.url("/api/auth/refresh"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(third.status(), StatusCode::OK);
    let third = signed(third).await;
    assert!(third.cookie.is_some());
    assert_eq!(third.session.refresh_token, None);
}

#[tokio::test]
async fn a_cookie_refresh_never_returns_the_token_in_the_body() {
    let app = spawn_app().await;
    let first = app.register(&unique_email()).await;
    let response = app
        .cookie_post(
            "/api/auth/refresh",
            Some(&first.refresh_token()),
            &[("x-refresh-token-delivery", "body")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(!text.contains("refresh_token"), "{text}");
}

#[tokio::test]
async fn the_header_wins_over_the_cookie() {
    let app = spawn_app().await;
    let a = app.register(&unique_email()).await;
    let b = app.register(&unique_email()).await;
    let response = app
        .client
        .post(app.url("/api/auth/refresh"))
        .header("cookie", format!("refresh_token={}", a.refresh_token()))
        .bearer_auth(b.refresh_token())
        .send()
        .await
        .unwrap();
    let signed = signed(response).await;
    assert_eq!(signed.session.user.id, b.session.user.id);
    // The cookie's token was not consumed.
    app.refresh(&a.refresh_token()).await;
}

#[tokio::test]
async fn foreign_origins_are_refused_without_consuming_the_token() {
    let app = spawn_app_with(&[("ALLOWED_ORIGINS", "https://admin.example")]).await;
    let first = app.register(&unique_email()).await;
    let token = first.refresh_token();
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let response = app
            .cookie_post("/api/auth/refresh", Some(&token), &[(name, value)])
            .await;
        assert_eq!(refresh_cookie(response.headers()), None, "nothing cleared");
        assert_error(response, StatusCode::FORBIDDEN, ErrorCode::OriginForbidden).await;
    }
    // Same host, and an allowed origin, pass; the token was never consumed.
    let same_origin = format!("http://{}", app.addr);
    let same = app
        .cookie_post(
            "/api/auth/refresh",
            Some(&token),
            &[("origin", &same_origin)],
        )
        .await;
    assert_eq!(same.status(), StatusCode::OK);
    let next = signed(same).await.refresh_token();
    let allowed = app
        .cookie_post(
            "/api/auth/refresh",
            Some(&next),
            &[("origin", "https://admin.example")],
        )
        .await;
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://admin.example"
    );
    assert_eq!(
        allowed.headers()["access-control-allow-credentials"],
        "true"
    );
}

#[tokio::test]
async fn cors_is_only_for_allowed_origins() {
    let app = spawn_app_with(&[("ALLOWED_ORIGINS", "https://admin.example")]).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/auth/refresh"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let ok = preflight("https://admin.example").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://admin.example"
    );
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

#[tokio::test]
async fn a_disabled_person_cannot_refresh() {
    let app = spawn_app().await;
    let first = app.register(&unique_email()).await;
    server::db::users::set_active(app.db.pool(), &first.session.user.id, false, 0)
        .await
        .unwrap();
    let response = app.refresh_raw(&first.refresh_token()).await;
    assert_error_clearing(response, StatusCode::FORBIDDEN, ErrorCode::AccountDisabled).await;
}
