//! The session store on its own: pruning of dead families.

use crate::helpers::{spawn_app, unique_email};
use server::db::sessions;

async fn families(app: &crate::helpers::TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from refresh_families")
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn prune_deletes_only_dead_families_and_their_tokens() {
    let app = spawn_app().await;
    let now = app.clock.now_unix();
    let live = app.register(&unique_email()).await;
    let revoked = app.register(&unique_email()).await;
    app.register(&unique_email()).await;
    // Logged out long ago, and one past its idle lifetime.
    sessions::revoke(
        app.db.pool(),
        &family_of(&app, &revoked.refresh_token()).await,
        now - 100_000,
        "logout",
    )
    .await
    .unwrap();
    assert_eq!(families(&app).await, 3);

    assert_eq!(
        sessions::prune(app.db.pool(), now - 86_400).await.unwrap(),
        1
    );
    assert_eq!(families(&app).await, 2);
    // Past the idle lifetime of the remaining ones, both go, tokens with them.
    assert_eq!(
        sessions::prune(app.db.pool(), now + 1_209_600)
            .await
            .unwrap(),
        2
    );
    let tokens: i64 = sqlx::query_scalar("select count(*) from refresh_tokens")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(tokens, 0, "tokens go with their family");
    let _ = live;
}

async fn family_of(app: &crate::helpers::TestApp, token: &str) -> String {
    sessions::find_presented(app.db.pool(), &server::auth::tokens::hash(token))
        .await
        .unwrap()
        .unwrap()
        .family
        .id
}

mod api {
    use crate::helpers::{
        assert_error, assert_error_clearing, spawn_app, unique_email, TestApp, PASSWORD,
    };
    use app::api::{ErrorCode, SessionInfo};
    use reqwest::StatusCode;
    use serde_json::json;

    const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    const SAFARI: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

    async fn login_as(app: &TestApp, email: &str, user_agent: &str) -> crate::helpers::Signed {
        let response = app
            .client
            .post(app.url("/api/auth/login"))
            .header("user-agent", user_agent)
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        crate::helpers::signed(response).await
    }

    async fn list(app: &TestApp, access_token: &str) -> Vec<SessionInfo> {
        let response = app
            .client
            .get(app.url("/api/sessions"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    #[tokio::test]
    async fn the_list_shows_each_device_and_which_is_this_one() {
        let app = spawn_app().await;
        let email = unique_email();
        app.register(&email).await;
        let laptop = login_as(&app, &email, FIREFOX).await;
        app.clock.advance(5);
        let phone = login_as(&app, &email, SAFARI).await;
        let sessions = list(&app, &phone.session.access_token).await;
        assert_eq!(sessions.len(), 3, "{sessions:?}");
        assert_eq!(sessions[0].device, "Safari on iOS");
        assert!(sessions[0].current);
        assert_eq!(sessions.iter().filter(|s| s.current).count(), 1);
        assert!(sessions
            .iter()
            .any(|s| s.device == "Firefox on Linux" && !s.current));
        assert_eq!(sessions[0].ip.as_deref(), Some("127.0.0.1"));
        // Another person sees none of them.
        let other = app.register(&unique_email()).await;
        assert_eq!(list(&app, &other.session.access_token).await.len(), 1);
        let _ = laptop;
    }

    #[tokio::test]
    async fn revoking_one_session_ends_its_refresh_tokens() {
        let app = spawn_app().await;
        let email = unique_email();
        let first = app.register(&email).await;
        let laptop = login_as(&app, &email, FIREFOX).await;
        let sessions = list(&app, &first.session.access_token).await;
        let laptop_id = sessions.iter().find(|s| !s.current).unwrap().id.clone();

        let stranger = app.register(&unique_email()).await;
        let response = app
            .client
            .delete(app.url(&format!("/api/sessions/{laptop_id}")))
            .bearer_auth(&stranger.session.access_token)
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;

        let response = app
            .client
            .delete(app.url(&format!("/api/sessions/{laptop_id}")))
            .bearer_auth(&first.session.access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let refused = app.refresh_raw(&laptop.refresh_token()).await;
        assert_error_clearing(refused, StatusCode::UNAUTHORIZED, ErrorCode::RefreshInvalid).await;
        app.refresh(&first.refresh_token()).await;
        assert_eq!(list(&app, &first.session.access_token).await.len(), 1);
    }

    #[tokio::test]
    async fn revoke_others_keeps_only_this_session() {
        let app = spawn_app().await;
        let email = unique_email();
        let first = app.register(&email).await;
        let a = login_as(&app, &email, FIREFOX).await;
        let b = login_as(&app, &email, SAFARI).await;
        let response = app
            .client
            .post(app.url("/api/sessions/revoke-others"))
            .bearer_auth(&b.session.access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        for gone in [&first, &a] {
            let refused = app.refresh_raw(&gone.refresh_token()).await;
            assert_error_clearing(refused, StatusCode::UNAUTHORIZED, ErrorCode::RefreshInvalid)
                .await;
        }
        app.refresh(&b.refresh_token()).await;
        let left = list(&app, &b.session.access_token).await;
        assert_eq!(left.len(), 1);
        assert!(left[0].current);
    }

    #[tokio::test]
    async fn the_sessions_api_needs_an_access_token() {
        let app = spawn_app().await;
        let response = app.get("/api/sessions").await;
        assert_error(response, StatusCode::UNAUTHORIZED, ErrorCode::TokenMissing).await;
        let response = app
            .client
            .post(app.url("/api/sessions/revoke-others"))
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::UNAUTHORIZED, ErrorCode::TokenMissing).await;
    }
}
