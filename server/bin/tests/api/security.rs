//! Regressions of the defects a security read of the server found, one test (or a few)
//! each; on SQLite and PostgreSQL alike unless a test says otherwise.

use crate::helpers::{
    assert_error, assert_error_clearing, spawn_app, spawn_app_with, unique_email, Signed, TestApp,
    PASSWORD,
};
use app::api::ErrorCode;
use reqwest::StatusCode;
use serde_json::json;
use server::{
    auth::tokens,
    db::{password_resets, sessions, users, Backend},
};
use std::net::{IpAddr, Ipv4Addr};

async fn me_status(app: &TestApp, signed: &Signed) -> StatusCode {
    app.me_raw(&signed.session.access_token).await.status()
}

// 1. An ended session's access token stops at once.

#[tokio::test]
async fn logout_ends_the_sessions_access_token_at_once() {
    let app = spawn_app().await;
    let email = unique_email();
    let signed = app.register(&email).await;
    let other = app.login(&email).await;
    assert_eq!(me_status(&app, &signed).await, StatusCode::OK);
    let out = app
        .cookie_post("/api/auth/logout", Some(&signed.refresh_token()), &[])
        .await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert_error(
        app.me_raw(&signed.session.access_token).await,
        StatusCode::UNAUTHORIZED,
        ErrorCode::TokenInvalid,
    )
    .await;
    assert_eq!(
        me_status(&app, &other).await,
        StatusCode::OK,
        "the other session goes on"
    );
}

#[tokio::test]
async fn revoking_a_session_or_the_others_ends_their_access_tokens() {
    let app = spawn_app().await;
    let email = unique_email();
    let here = app.register(&email).await;
    let phone = app.login(&email).await;
    let laptop = app.login(&email).await;
    let response = app
        .client
        .delete(app.url(&format!("/api/sessions/{}", session_id(&app, &phone).await)))
        .bearer_auth(&here.session.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(me_status(&app, &phone).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_status(&app, &laptop).await, StatusCode::OK);

    let response = app
        .bearer_post(
            "/api/sessions/revoke-others",
            &here.session.access_token,
            json!({}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(me_status(&app, &laptop).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_status(&app, &here).await, StatusCode::OK);
}

#[tokio::test]
async fn a_detected_replay_ends_the_sessions_access_tokens() {
    let app = spawn_app().await;
    let signed = app.register(&unique_email()).await;
    let rotated = app.refresh(&signed.refresh_token()).await;
    app.clock.advance(60);
    assert_error_clearing(
        app.refresh_raw(&signed.refresh_token()).await,
        StatusCode::UNAUTHORIZED,
        ErrorCode::RefreshReused,
    )
    .await;
    assert_eq!(me_status(&app, &rotated).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_admin_revocation_ends_access_tokens() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let person = app.register(&unique_email()).await;
    let response = app
        .bearer_post(
            &format!(
                "/api/admin/users/{}/revoke-sessions",
                person.session.user.id
            ),
            &admin.session.access_token,
            json!({}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(me_status(&app, &person).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_minted_in_the_second_of_a_password_change_is_refused_when_its_session_ended() {
    // The clock does not move: the other session's token and the change share a second.
    let app = spawn_app().await;
    let email = unique_email();
    let here = app.register(&email).await;
    let other = app.login(&email).await;
    let response = app
        .bearer_post(
            "/api/auth/password/change",
            &here.session.access_token,
            json!({"current_password": PASSWORD, "new_password": "another long password"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(me_status(&app, &other).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        me_status(&app, &here).await,
        StatusCode::OK,
        "this session goes on"
    );
}

#[tokio::test]
async fn a_session_started_after_the_person_was_cached_is_honoured() {
    // The cache lists the live sessions; a new one (here, or on another instance) is read.
    let app = spawn_app().await;
    let email = unique_email();
    let first = app.register(&email).await;
    assert_eq!(me_status(&app, &first).await, StatusCode::OK);
    let second = app.login(&email).await;
    assert_eq!(me_status(&app, &second).await, StatusCode::OK);
}

// 2. Limits are decided and counted before any password is hashed.

#[tokio::test]
async fn a_parallel_burst_of_logins_gets_no_more_guesses_than_the_budget() {
    let app = spawn_app_with(&[("RATE_LIMIT_ENABLED", "true")]).await;
    let email = unique_email();
    app.register(&email).await;
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..60 {
        let (client, url) = (app.client.clone(), app.url("/api/auth/login"));
        let body = json!({"email": email, "password": "a wrong password"});
        burst.spawn(async move { client.post(url).json(&body).send().await.unwrap().status() });
    }
    let answers = burst.join_all().await;
    let guesses = answers
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let limited = answers
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(guesses <= 10, "{guesses} guesses judged");
    assert_eq!(guesses + limited, 60);
    // What reached the hashing pool: the registration's hash and at most ten checks.
    assert!(app.state.core.passwords.asked() <= 11);
}

#[tokio::test]
async fn rotating_source_addresses_does_not_multiply_guesses() {
    let app = spawn_app_with(&[("RATE_LIMIT_ENABLED", "true")]).await;
    let email = unique_email();
    app.register(&email).await;
    let mut guesses = 0;
    for i in 0..60u8 {
        // Every address of 127.0.0.0/8 reaches the loopback server.
        let from = IpAddr::V4(Ipv4Addr::new(127, 0, 1, i + 1));
        let client = reqwest::Client::builder()
            .local_address(from)
            .build()
            .unwrap();
        let response = client
            .post(app.url("/api/auth/login"))
            .json(&json!({"email": email, "password": "a wrong password"}))
            .send()
            .await
            .unwrap();
        match response.status() {
            StatusCode::UNAUTHORIZED => guesses += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(guesses, 50, "the account's budget across all addresses");
}

/// The id of the session `signed` belongs to, as the sessions list names it.
async fn session_id(app: &TestApp, signed: &Signed) -> String {
    app.current_session(&signed.session.access_token).await.id
}

// 3. A bogus reset link never reaches the hashing pool.

#[tokio::test]
async fn bogus_reset_tokens_are_refused_before_any_hash() {
    let app = spawn_app().await;
    let before = app.state.core.passwords.asked();
    for _ in 0..20 {
        let bogus = tokens::random_token(&mut rand::rng());
        let response = app
            .post_json(
                "/api/auth/password/reset",
                json!({"token": bogus, "password": "a new long password"}),
            )
            .await;
        assert_error(
            response,
            StatusCode::BAD_REQUEST,
            ErrorCode::ResetTokenInvalid,
        )
        .await;
    }
    assert_eq!(app.state.core.passwords.asked(), before, "no hash was made");
}

// 4. Junk refreshes never wait for (or hold) the write turn; the wait for it is bounded.

#[tokio::test]
async fn an_unknown_refresh_token_is_answered_while_a_writer_holds_the_database() {
    let app = spawn_app().await;
    let held = app.db.begin_write().await.unwrap();
    let junk = tokens::random_token(&mut rand::rng());
    let response = tokio::time::timeout(std::time::Duration::from_secs(3), app.refresh_raw(&junk))
        .await
        .expect("answered without waiting for the writer");
    assert_error_clearing(
        response,
        StatusCode::UNAUTHORIZED,
        ErrorCode::RefreshInvalid,
    )
    .await;
    drop(held);
}

#[tokio::test]
async fn a_refresh_that_cannot_get_the_write_turn_in_time_answers_overloaded() {
    let app = spawn_app().await;
    // PostgreSQL has no single writer: there a held transaction blocks nobody.
    if app.db.backend() == Backend::Postgres {
        return;
    }
    let signed = app.register(&unique_email()).await;
    let held = app.db.begin_write().await.unwrap();
    let response = app.refresh_raw(&signed.refresh_token()).await;
    assert!(response.headers().contains_key("retry-after"));
    assert!(
        !response.headers().contains_key("set-cookie"),
        "a busy server keeps the cookie"
    );
    assert_error(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Overloaded,
    )
    .await;
    drop(held);
    app.refresh(&signed.refresh_token()).await;
}

// 5. A rotation racing a revocation loses.

#[tokio::test]
async fn a_rotation_step_refuses_a_family_revoked_since_it_was_read() {
    let app = spawn_app().await;
    let signed = app.register(&unique_email()).await;
    let hash = tokens::hash(&signed.refresh_token());
    let found = sessions::find_presented(app.db.pool(), &hash)
        .await
        .unwrap()
        .unwrap();
    // The logout commits between the rotation's read and its write.
    sessions::revoke(
        app.db.pool(),
        &found.family.id,
        app.clock.now_unix(),
        "logout",
    )
    .await
    .unwrap();
    let mut tx = app.db.begin_write().await.unwrap();
    let rotated = sessions::rotate(
        &mut tx,
        sessions::Rotation {
            family_id: &found.family.id,
            parent_generation: found.token.generation,
            parent_hash: &hash,
            child_hash: &tokens::hash("child"),
            child_expires_at: app.clock.now_unix() + 100,
            now: app.clock.now_unix(),
        },
    )
    .await
    .unwrap();
    assert!(!rotated, "nothing rotated in a revoked family");
    tx.commit().await.unwrap();
    assert_error_clearing(
        app.refresh_raw(&signed.refresh_token()).await,
        StatusCode::UNAUTHORIZED,
        ErrorCode::RefreshInvalid,
    )
    .await;
}

// 6. Two admins disabling each other at once cannot both succeed.

#[tokio::test]
async fn two_admins_disabling_each_other_at_once_leave_one_admin() {
    let app = spawn_app().await;
    for round in 0..8 {
        let a = app.admin().await;
        let b = app.admin().await;
        // Every other admin of earlier rounds is disabled: these two are the only ones.
        let disable = |by: &Signed, whom: &Signed| {
            app.client
                .patch(app.url(&format!("/api/admin/users/{}", whom.session.user.id)))
                .bearer_auth(&by.session.access_token)
                .json(&json!({"active": false}))
                .send()
        };
        let (ab, ba) = tokio::join!(disable(&a, &b), disable(&b, &a));
        let statuses = [ab.unwrap().status(), ba.unwrap().status()];
        // The loser is refused as the last admin (409), or, disabled already, as no
        // admin any more (403 in the service, 401 at the guard).
        assert!(
            statuses.iter().filter(|s| **s == StatusCode::OK).count() == 1,
            "round {round}: {statuses:?}"
        );
        let admins: i64 =
            sqlx::query_scalar("select count(*) from users where role = 'admin' and active = 1")
                .fetch_one(app.db.pool())
                .await
                .unwrap();
        assert_eq!(admins, 1, "round {round}");
        // The survivor steps aside for the next round's pair: disabled directly.
        sqlx::query("update users set active = 0 where role = 'admin'")
            .execute(app.db.pool())
            .await
            .unwrap();
    }
}

/// A live reset link of the person, as a mail would carry it.
async fn reset_link(app: &TestApp, signed: &Signed) -> String {
    let link = tokens::random_token(&mut rand::rng());
    let now = app.clock.now_unix();
    password_resets::insert(
        app.db.pool(),
        &tokens::hash(&link),
        &signed.session.user.id,
        now,
        now + 1800,
    )
    .await
    .unwrap();
    link
}

// 9. A password change ends pending reset links.

#[tokio::test]
async fn changing_the_password_ends_pending_reset_links() {
    let app = spawn_app().await;
    let signed = app.register(&unique_email()).await;
    let link = reset_link(&app, &signed).await;
    let response = app
        .bearer_post(
            "/api/auth/password/change",
            &signed.session.access_token,
            json!({"current_password": PASSWORD, "new_password": "another long password"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let reset = app
        .post_json(
            "/api/auth/password/reset",
            json!({"token": link, "password": "the attacker's password"}),
        )
        .await;
    assert_error(reset, StatusCode::BAD_REQUEST, ErrorCode::ResetTokenInvalid).await;
}

// 10. Ended sessions are kept long enough to be answered for what they are.

#[tokio::test]
async fn an_expired_session_still_answers_expired_after_pruning() {
    let app = spawn_app().await;
    let signed = app.register(&unique_email()).await;
    // Two days past its 14-day idle lifetime, and the pruner has run.
    app.clock.advance(16 * 24 * 3600);
    let retention = app.state.settings.audit_retention;
    server::prune_once(&app.db, app.clock.now_unix(), retention)
        .await
        .unwrap();
    assert_error_clearing(
        app.refresh_raw(&signed.refresh_token()).await,
        StatusCode::UNAUTHORIZED,
        ErrorCode::RefreshExpired,
    )
    .await;
    // A week after it ended, it is gone.
    app.clock.advance(6 * 24 * 3600);
    let retention = app.state.settings.audit_retention;
    server::prune_once(&app.db, app.clock.now_unix(), retention)
        .await
        .unwrap();
    assert_error_clearing(
        app.refresh_raw(&signed.refresh_token()).await,
        StatusCode::UNAUTHORIZED,
        ErrorCode::RefreshInvalid,
    )
    .await;
}

// Found by a review of the fixes above.

#[tokio::test]
async fn a_replayed_token_of_an_ended_session_costs_no_database_read() {
    let app = spawn_app().await;
    let signed = app.register(&unique_email()).await;
    let out = app
        .cookie_post("/api/auth/logout", Some(&signed.refresh_token()), &[])
        .await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    app.clock.advance(10);
    let users = &app.state.core.users;
    let (loads_before, evictions_before) = (users.loads(), users.evictions());
    for _ in 0..100 {
        assert_eq!(me_status(&app, &signed).await, StatusCode::UNAUTHORIZED);
    }
    let loads = users.loads() - loads_before;
    // On PostgreSQL an entry is forgotten when the logout's own announcement comes back
    // to this instance, and everyone when its heartbeat comes back late (a busy
    // machine); either may land during the loop. Each costs one more read, and only one.
    let forgotten = users.evictions() - evictions_before;
    assert!(
        loads <= 1 + forgotten,
        "{loads} reads of the person, {forgotten} evictions"
    );
}

#[tokio::test]
async fn parallel_resets_with_one_live_link_hash_once() {
    let app = spawn_app().await;
    let signed = app.register(&unique_email()).await;
    let link = reset_link(&app, &signed).await;
    let before = app.state.core.passwords.asked();
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let (client, url) = (app.client.clone(), app.url("/api/auth/password/reset"));
        let body = json!({"token": link, "password": "a brand new password"});
        burst.spawn(async move { client.post(url).json(&body).send().await.unwrap().status() });
    }
    let answers = burst.join_all().await;
    let done = answers
        .iter()
        .filter(|s| **s == StatusCode::NO_CONTENT)
        .count();
    assert_eq!(done, 1, "{answers:?}");
    assert_eq!(app.state.core.passwords.asked() - before, 1, "one hash");
}

#[tokio::test]
async fn a_rotation_waiting_on_an_uncommitted_logout_loses_to_it() {
    let app = spawn_app().await;
    let signed = app.register(&unique_email()).await;
    let token = signed.refresh_token();
    let found = sessions::find_presented(app.db.pool(), &tokens::hash(&token))
        .await
        .unwrap()
        .unwrap();
    let now = app.clock.now_unix();
    // The logout holds its write (and on PostgreSQL the family's row lock) uncommitted.
    let mut logout = app.db.begin_write().await.unwrap();
    sessions::revoke(&mut *logout, &found.family.id, now, "logout")
        .await
        .unwrap();
    let (db, secret) = (app.db.clone(), app.state.core.secret.clone());
    let policy = app.state.core.lifetimes.policy;
    let refresh = tokio::spawn(async move {
        server::service::sessions::rotate(&db, &secret, &token, now, policy).await
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!refresh.is_finished(), "the rotation waits for the logout");
    logout.commit().await.unwrap();
    let outcome = refresh.await.unwrap().unwrap();
    assert_eq!(
        outcome,
        Err(server::service::sessions::RefreshFailure::Invalid)
    );
}

#[tokio::test]
async fn guessing_the_current_password_from_rotating_addresses_is_limited_per_person() {
    let app = spawn_app_with(&[("RATE_LIMIT_ENABLED", "true")]).await;
    let signed = app.register(&unique_email()).await;
    let mut guesses = 0;
    for i in 0..60u8 {
        let from = IpAddr::V4(Ipv4Addr::new(127, 0, 2, i + 1));
        let client = reqwest::Client::builder()
            .local_address(from)
            .build()
            .unwrap();
        let response = client
            .post(app.url("/api/auth/password/change"))
            .bearer_auth(&signed.session.access_token)
            .json(&json!({"current_password": "a wrong guess", "new_password": "whatever long"}))
            .send()
            .await
            .unwrap();
        match response.status() {
            StatusCode::UNAUTHORIZED => guesses += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(guesses, 50);
}

#[tokio::test]
async fn an_origin_that_is_not_text_is_refused() {
    let app = spawn_app().await;
    let signed = app.register(&unique_email()).await;
    let response = app
        .client
        .post(app.url("/api/auth/refresh"))
        .header(
            "cookie",
            format!("refresh_token={}", signed.refresh_token()),
        )
        .header(
            "origin",
            reqwest::header::HeaderValue::from_bytes(b"http://\xffevil.example").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::FORBIDDEN, ErrorCode::OriginForbidden).await;
}

#[tokio::test]
async fn an_admin_disabled_elsewhere_can_no_longer_change_access() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let _other_admin = app.admin().await;
    let person = app.register(&unique_email()).await;
    // The guard has the admin cached as active...
    let listed = app
        .client
        .get(app.url("/api/admin/users"))
        .bearer_auth(&admin.session.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    // ...when another instance disables them (no eviction here).
    users::set_active(app.db.pool(), &admin.session.user.id, false, 0)
        .await
        .unwrap();
    let response = app
        .client
        .patch(app.url(&format!("/api/admin/users/{}", person.session.user.id)))
        .bearer_auth(&admin.session.access_token)
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::FORBIDDEN, ErrorCode::Forbidden).await;
}
