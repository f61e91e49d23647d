//! `POST /api/auth/password/change`.

use crate::helpers::{
    assert_error, assert_error_clearing, spawn_app, unique_email, TestApp, PASSWORD,
};
use app::api::ErrorCode;
use reqwest::{Response, StatusCode};
use serde_json::json;

async fn change(app: &TestApp, access_token: &str, current: &str, new: &str) -> Response {
    app.client
        .post(app.url("/api/auth/password/change"))
        .bearer_auth(access_token)
        .json(&json!({"current_password": current, "new_password": new}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn changing_the_password_ends_every_other_session_and_keeps_this_one() {
    let app = spawn_app().await;
    let email = unique_email();
    let here = app.register(&email).await;
    let elsewhere = app.login(&email).await;
    app.clock.advance(1);
    let response = change(
        &app,
        &here.session.access_token,
        PASSWORD,
        "a brand new password",
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let refused = app.refresh_raw(&elsewhere.refresh_token()).await;
    assert_error_clearing(refused, StatusCode::UNAUTHORIZED, ErrorCode::RefreshInvalid).await;
    // The other session's access token stops working at once, not at its expiry.
    let me = app.me_raw(&elsewhere.session.access_token).await;
    assert_error(me, StatusCode::UNAUTHORIZED, ErrorCode::TokenInvalid).await;
    // This session goes on: one refresh renews its access token.
    let renewed = app.refresh(&here.refresh_token()).await;
    assert_eq!(
        app.me_raw(&renewed.session.access_token).await.status(),
        StatusCode::OK
    );

    let old = app.login_raw(&email, PASSWORD).await;
    assert_error(old, StatusCode::UNAUTHORIZED, ErrorCode::InvalidCredentials).await;
    assert_eq!(
        app.login_raw(&email, "a brand new password").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_current_password_is_required_and_checked() {
    let app = spawn_app().await;
    let here = app.register(&unique_email()).await;
    let wrong = change(
        &app,
        &here.session.access_token,
        "not my password",
        "a brand new password",
    )
    .await;
    assert_error(
        wrong,
        StatusCode::UNAUTHORIZED,
        ErrorCode::InvalidCredentials,
    )
    .await;
    let invalid = change(&app, &here.session.access_token, "", "short").await;
    let body = assert_error(
        invalid,
        StatusCode::BAD_REQUEST,
        ErrorCode::ValidationFailed,
    )
    .await;
    let fields = body.error.fields.unwrap();
    assert!(
        fields.contains_key("current_password") && fields.contains_key("new_password"),
        "{fields:?}"
    );
    let anonymous = app
        .post_json(
            "/api/auth/password/change",
            json!({"current_password": PASSWORD, "new_password": "whatever new"}),
        )
        .await;
    assert_error(anonymous, StatusCode::UNAUTHORIZED, ErrorCode::TokenMissing).await;
}

/// The person as a login reads them before checking the password, then the second half of
/// that login (`start_checked`) as it runs once the check is over.
async fn login_checked_before<'a>(
    app: &'a TestApp,
    email: &str,
) -> impl std::future::Future<Output = Result<server::service::SignedIn, server::error::ApiError>> + 'a
{
    let checked = server::db::users::find_by_email(app.db.pool(), email)
        .await
        .unwrap()
        .expect("registered");
    async move {
        server::service::sessions::start_checked(
            &app.state.core,
            checked,
            &secrecy::SecretString::from(PASSWORD.to_string()),
            false,
            server::service::Client {
                ip: None,
                user_agent: None,
            },
            app.clock.now_unix(),
        )
        .await
    }
}

#[tokio::test]
async fn a_login_that_checked_the_old_password_before_a_change_landed_opens_nothing() {
    let app = spawn_app().await;
    let email = unique_email();
    let here = app.register(&email).await;
    // The login read the person and found the old password right; the change lands while it
    // hashes (outside any transaction), before its own transaction.
    let rest_of_login = login_checked_before(&app, &email).await;
    let response = change(
        &app,
        &here.session.access_token,
        PASSWORD,
        "a brand new password",
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let opened = rest_of_login.await;
    assert!(
        matches!(opened, Err(server::error::ApiError::InvalidCredentials)),
        "the replaced password opened a session: {:?}",
        opened.map(|s| s.issued.family_id)
    );
    let live: i64 = sqlx::query_scalar(
        "select count(*) from refresh_families where user_id = $1 and revoked_at is null",
    )
    .bind(&here.session.user.id)
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(live, 1, "only the session that changed the password");
    let failed: Vec<Option<String>> = sqlx::query_scalar(
        "select detail from audit_log where action = 'login_failed' and subject_id = $1",
    )
    .bind(&here.session.user.id)
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    assert_eq!(
        failed,
        [Some("password changed during the sign-in".to_string())],
        "audited as a failed login"
    );
}

#[tokio::test]
async fn a_login_whose_password_another_login_re_hashed_meanwhile_still_opens() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email).await;
    let rest_of_login = login_checked_before(&app, &email).await;
    // Another login of the same person re-hashed the same password (new parameters).
    let user = server::db::users::find_by_email(app.db.pool(), &email)
        .await
        .unwrap()
        .unwrap();
    let fresh = app
        .state
        .core
        .passwords
        .hash(&secrecy::SecretString::from(PASSWORD.to_string()))
        .await
        .unwrap();
    assert!(server::db::users::replace_password_hash(
        app.db.pool(),
        &user.id,
        &user.password_hash,
        &fresh,
        app.clock.now_unix(),
    )
    .await
    .unwrap());
    let opened = rest_of_login.await.expect("the same password still opens");
    assert_eq!(opened.user.id, user.id);
}
