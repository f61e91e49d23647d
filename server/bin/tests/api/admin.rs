//! `/api/admin/*`: people, roles and access, admins only.

use crate::helpers::{assert_error, assert_error_clearing, spawn_app, unique_email, TestApp};
use app::api::{AdminUser, ErrorCode, UserPage};
use reqwest::{Response, StatusCode};
use serde_json::json;

async fn patch(app: &TestApp, token: &str, id: &str, body: serde_json::Value) -> Response {
    app.client
        .patch(app.url(&format!("/api/admin/users/{id}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn page(app: &TestApp, token: &str, query: &str) -> Response {
    app.client
        .get(app.url(&format!("/api/admin/users{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn only_admins_get_in() {
    let app = spawn_app().await;
    let person = app.register(&unique_email()).await;
    let response = page(&app, &person.session.access_token, "").await;
    assert_error(response, StatusCode::FORBIDDEN, ErrorCode::Forbidden).await;
    let response = app.get("/api/admin/users").await;
    assert_error(response, StatusCode::UNAUTHORIZED, ErrorCode::TokenMissing).await;
}

#[tokio::test]
async fn people_are_listed_in_pages_and_searched() {
    let app = spawn_app().await;
    let root = app.admin().await;
    for name in ["Ada Lovelace", "Grace Hopper", "Alan Turing"] {
        let email = format!(
            "{}-{}@example.com",
            name.split(' ').next().unwrap().to_lowercase(),
            uuid::Uuid::new_v4().simple()
        );
        let response = app
            .register_raw(&email, crate::helpers::PASSWORD, name)
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let all: UserPage = page(&app, &root.session.access_token, "?per_page=2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (all.total, all.users.len(), all.page, all.per_page),
        (4, 2, 1, 2)
    );
    let second: UserPage = page(&app, &root.session.access_token, "?per_page=2&page=2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second.users.len(), 2);
    assert!(second.users.iter().all(|u| !all.users.contains(u)));

    let found: UserPage = page(&app, &root.session.access_token, "?q=HOPPER")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found.total, 1);
    assert_eq!(found.users[0].user.name, "Grace Hopper");
    let by_email: UserPage = page(&app, &root.session.access_token, "?q=ada-")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_email.total, 1);
    let wildcard: UserPage = page(&app, &root.session.access_token, "?q=%25")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(wildcard.total, 0, "% is searched for, not a wildcard");

    let response = page(&app, &root.session.access_token, "?per_page=1000").await;
    assert_error(
        response,
        StatusCode::BAD_REQUEST,
        ErrorCode::ValidationFailed,
    )
    .await;
}

#[tokio::test]
async fn disabling_takes_effect_at_once_and_revokes_sessions() {
    let app = spawn_app().await;
    let root = app.admin().await;
    let person = app.register(&unique_email()).await;
    let id = person.session.user.id.clone();
    let response = patch(
        &app,
        &root.session.access_token,
        &id,
        json!({"active": false}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let updated: AdminUser = response.json().await.unwrap();
    assert!(!updated.active);

    let me = app.me_raw(&person.session.access_token).await;
    assert_error(me, StatusCode::UNAUTHORIZED, ErrorCode::TokenInvalid).await;
    // The refresh says why, and clears the cookie.
    let refresh = app.refresh_raw(&person.refresh_token()).await;
    assert_error_clearing(refresh, StatusCode::FORBIDDEN, ErrorCode::AccountDisabled).await;

    // Enabled again, the person signs in anew; the old login stays ended.
    let response = patch(
        &app,
        &root.session.access_token,
        &id,
        json!({"active": true}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let refresh = app.refresh_raw(&person.refresh_token()).await;
    assert_error_clearing(refresh, StatusCode::UNAUTHORIZED, ErrorCode::RefreshInvalid).await;
    app.login(&person.session.user.email).await;
}

#[tokio::test]
async fn disabling_deletes_the_person_s_reset_links() {
    let app = spawn_app().await;
    let root = app.admin().await;
    let person = app.register(&unique_email()).await;
    let id = person.session.user.id.clone();
    let now = app.clock.now_unix();
    let links = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from password_resets where user_id = $1")
            .bind(&id)
            .fetch_one(app.db.pool())
            .await
            .unwrap()
    };
    server::db::password_resets::insert(app.db.pool(), "some-hash", &id, now, now + 1800)
        .await
        .unwrap();
    assert_eq!(links().await, 1);
    let response = patch(
        &app,
        &root.session.access_token,
        &id,
        json!({"active": false}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(links().await, 0);
}

#[tokio::test]
async fn promoting_and_demoting() {
    let app = spawn_app().await;
    let root = app.admin().await;
    let person = app.register(&unique_email()).await;
    let id = person.session.user.id.clone();
    let response = patch(
        &app,
        &root.session.access_token,
        &id,
        json!({"role": "admin"}),
    )
    .await;
    let updated: AdminUser = response.json().await.unwrap();
    assert_eq!(updated.user.role, app::api::Role::Admin);
    // The old user token no longer matches the role.
    let me = app.me_raw(&person.session.access_token).await;
    assert_error(me, StatusCode::UNAUTHORIZED, ErrorCode::TokenInvalid).await;
    let as_admin = app.refresh(&person.refresh_token()).await;
    assert_eq!(
        page(&app, &as_admin.session.access_token, "")
            .await
            .status(),
        StatusCode::OK
    );

    let response = patch(
        &app,
        &root.session.access_token,
        &id,
        json!({"role": "user"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = page(&app, &as_admin.session.access_token, "").await;
    assert_error(response, StatusCode::UNAUTHORIZED, ErrorCode::TokenInvalid).await;
    let response = patch(
        &app,
        &root.session.access_token,
        "no-such-id",
        json!({"role": "user"}),
    )
    .await;
    assert_error(response, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
}

#[tokio::test]
async fn the_last_active_admin_cannot_be_demoted_or_disabled() {
    let app = spawn_app().await;
    let root = app.admin().await;
    let id = root.session.user.id.clone();
    for change in [json!({"role": "user"}), json!({"active": false})] {
        let response = patch(&app, &root.session.access_token, &id, change).await;
        assert_error(response, StatusCode::CONFLICT, ErrorCode::LastAdmin).await;
    }
    // With a second admin, the first may step down.
    let second = app.admin().await;
    let response = patch(
        &app,
        &second.session.access_token,
        &id,
        json!({"role": "user"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = patch(
        &app,
        &second.session.access_token,
        &second.session.user.id,
        json!({"active": false}),
    )
    .await;
    assert_error(response, StatusCode::CONFLICT, ErrorCode::LastAdmin).await;
}

#[tokio::test]
async fn revoking_a_persons_sessions_ends_their_tokens() {
    let app = spawn_app().await;
    let root = app.admin().await;
    let person = app.register(&unique_email()).await;
    app.clock.advance(1);
    let response = app
        .client
        .post(app.url(&format!(
            "/api/admin/users/{}/revoke-sessions",
            person.session.user.id
        )))
        .bearer_auth(&root.session.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let me = app.me_raw(&person.session.access_token).await;
    assert_error(me, StatusCode::UNAUTHORIZED, ErrorCode::TokenInvalid).await;
    let refresh = app.refresh_raw(&person.refresh_token()).await;
    assert_error_clearing(refresh, StatusCode::UNAUTHORIZED, ErrorCode::RefreshInvalid).await;
    app.login(&person.session.user.email).await;
}

#[tokio::test]
async fn the_audit_log_records_security_events_without_secrets() {
    let app = spawn_app().await;
    let root = app.admin().await;
    let email = unique_email();
    let person = app.register(&email).await;
    let _ = app.login_raw(&email, "not the password").await;
    let _ = app.login_raw("nobody@example.com", "whatever pw").await;
    let second = app.refresh(&person.refresh_token()).await;
    app.clock.advance(30);
    let _ = app.refresh_raw(&person.refresh_token()).await; // replay after grace
    let later = app.login(&email).await;
    let _ = app
        .cookie_post("/api/auth/logout", Some(&later.refresh_token()), &[])
        .await;
    patch(
        &app,
        &root.session.access_token,
        &person.session.user.id,
        json!({"active": false}),
    )
    .await;

    let response = page(&app, &root.session.access_token, "").await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    for secret in [
        crate::helpers::PASSWORD,
        "not the password",
        &person.refresh_token(),
        &second.refresh_token(),
    ] {
        assert!(!text.contains(secret), "no secret in the log");
    }
    let log = app
        .client
        .get(app.url("/api/admin/audit?per_page=100"))
        .bearer_auth(&root.session.access_token)
        .send()
        .await
        .unwrap();
    let text = log.text().await.unwrap();
    for secret in [
        crate::helpers::PASSWORD,
        "not the password",
        &person.refresh_token(),
        &later.refresh_token(),
    ] {
        assert!(!text.contains(secret), "no secret in the audit log: {text}");
    }
    let entries: Vec<app::api::AuditEntry> = serde_json::from_str(&text).unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    for action in [
        "login_succeeded",
        "login_failed",
        "refresh_reused",
        "logout",
        "access_changed",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    let reuse = entries
        .iter()
        .find(|e| e.action == "refresh_reused")
        .unwrap();
    assert_eq!(
        reuse.subject_id.as_deref(),
        Some(person.session.user.id.as_str())
    );
    assert_eq!(
        reuse.detail.as_deref(),
        Some("replayed after the grace window")
    );
    let unknown = entries
        .iter()
        .find(|e| e.action == "login_failed" && e.subject_id.is_none())
        .unwrap();
    assert_eq!(
        unknown.detail.as_deref(),
        Some("unknown account nobody@example.com")
    );
    // Newest first.
    assert!(entries.windows(2).all(|w| w[0].at >= w[1].at));

    let response = app
        .client
        .get(app.url("/api/admin/audit"))
        .bearer_auth(&person.session.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "disabled person, and not an admin"
    );
}

/// Two admins changing the same person at once: one disables them while the other
/// promotes them. The promotion must not undo the disabling (each writes both the role and
/// whether the person is active). On PostgreSQL the two transactions overlap: the
/// disabling is held open here while the promotion runs.
#[tokio::test]
async fn a_promotion_racing_a_disabling_does_not_enable_the_person_again() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let person = app.register(&unique_email()).await;
    let id = person.session.user.id.clone();
    // The other admin's disabling, not committed yet.
    let mut disabling = app.db.begin_write().await.unwrap();
    server::db::users::set_active(&mut *disabling, &id, false, app.clock.now_unix())
        .await
        .unwrap();
    let (promoted, ()) = tokio::join!(
        patch(
            &app,
            &admin.session.access_token,
            &id,
            json!({"role": "admin"})
        ),
        async {
            // The promotion reaches its transaction meanwhile (on SQLite it waits for the
            // write turn this transaction holds).
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            disabling.commit().await.unwrap();
        }
    );
    assert_eq!(promoted.status(), StatusCode::OK);
    let now = server::db::users::find_by_id(app.db.pool(), &id)
        .await
        .unwrap()
        .unwrap();
    assert!(!now.active, "the promotion enabled the person again");
    assert_eq!(now.role.as_str(), "admin");
}

/// The only admin disables a person whose promotion (by the same admin, in another
/// request) commits meanwhile: two admins are active by then, so the disabling is no
/// removal of the last admin. On PostgreSQL the promotion is held open here meanwhile.
#[tokio::test]
async fn a_disabling_racing_a_promotion_of_the_same_person_is_not_refused_as_the_last_admin() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let person = app.register(&unique_email()).await;
    let id = person.session.user.id.clone();
    let mut promoting = app.db.begin_write().await.unwrap();
    server::db::users::update_access(
        &mut *promoting,
        &id,
        server::db::users::Role::Admin,
        true,
        app.clock.now_unix(),
    )
    .await
    .unwrap();
    let (disabled, ()) = tokio::join!(
        patch(
            &app,
            &admin.session.access_token,
            &id,
            json!({"active": false})
        ),
        async {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            promoting.commit().await.unwrap();
        }
    );
    assert_eq!(disabled.status(), StatusCode::OK);
    let now = server::db::users::find_by_id(app.db.pool(), &id)
        .await
        .unwrap()
        .unwrap();
    assert!(!now.active);
}
