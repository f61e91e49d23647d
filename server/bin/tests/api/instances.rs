//! Several instances on one database: changes of access seen by every instance within
//! 2 s, also after the listening connection was lost, and the grace window judged by the
//! database's clock. (Keys and limits across instances: `keys.rs`, `rate_limits.rs`.)

use crate::helpers::{on_postgres, spawn_app, unique_email, Signed, TestApp, PASSWORD};
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

/// Two instances on one PostgreSQL database; `None` on SQLite, which serves one instance
/// (these tests run in the PostgreSQL pass of the test command).
async fn pair() -> Option<(TestApp, TestApp)> {
    if !on_postgres() {
        eprintln!("several instances share PostgreSQL only: checked in the PostgreSQL run");
        return None;
    }
    let a = spawn_app().await;
    let b = a.another_instance(&[]).await;
    Some((a, b))
}

/// A person signed in on `a` whose token `b` has just accepted (and so holds in its cache).
async fn known_to_both(a: &TestApp, b: &TestApp) -> (String, Signed) {
    let email = unique_email();
    let signed = a.register(&email).await;
    assert_eq!(
        b.me_raw(&signed.session.access_token).await.status(),
        StatusCode::OK
    );
    (email, signed)
}

/// `b` refuses `token` within 2 s.
async fn refused_within_two_seconds(b: &TestApp, token: &str, change: &str) {
    let started = Instant::now();
    loop {
        let status = b.me_raw(token).await.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "after {change} on one instance, the other still answers {status} after 2 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_logout_stops_the_token_on_the_other_instance_within_two_seconds() {
    let Some((a, b)) = pair().await else { return };
    let (_, signed) = known_to_both(&a, &b).await;
    let response = a
        .cookie_post("/api/auth/logout", Some(&signed.refresh_token()), &[])
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    refused_within_two_seconds(&b, &signed.session.access_token, "a logout").await;
}

#[tokio::test]
async fn a_revoked_session_stops_on_the_other_instance_within_two_seconds() {
    let Some((a, b)) = pair().await else { return };
    let (email, signed) = known_to_both(&a, &b).await;
    let other = a.login(&email).await;
    let id = a.current_session(&signed.session.access_token).await.id;
    let response = a
        .client
        .delete(a.url(&format!("/api/sessions/{id}")))
        .bearer_auth(&other.session.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    refused_within_two_seconds(&b, &signed.session.access_token, "a revoked session").await;
}

#[tokio::test]
async fn disabling_and_a_role_change_reach_the_other_instance_within_two_seconds() {
    let Some((a, b)) = pair().await else { return };
    let admin = a.admin().await;
    for (change, body) in [
        ("a role change", json!({"role": "admin"})),
        ("disabling", json!({"active": false})),
    ] {
        let (_, signed) = known_to_both(&a, &b).await;
        let response = a
            .client
            .patch(a.url(&format!("/api/admin/users/{}", signed.session.user.id)))
            .bearer_auth(&admin.session.access_token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{change}");
        refused_within_two_seconds(&b, &signed.session.access_token, change).await;
    }
}

#[tokio::test]
async fn a_password_change_ends_other_sessions_on_the_other_instance_within_two_seconds() {
    let Some((a, b)) = pair().await else { return };
    let (email, signed) = known_to_both(&a, &b).await;
    let changer = a.login(&email).await;
    let response = a
        .bearer_post(
            "/api/auth/password/change",
            &changer.session.access_token,
            json!({"current_password": PASSWORD, "new_password": "another long password"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    refused_within_two_seconds(&b, &signed.session.access_token, "a password change").await;
}

#[tokio::test]
async fn a_change_made_while_the_listener_is_down_is_still_seen_within_two_seconds() {
    let Some((a, b)) = pair().await else { return };
    let (_, signed) = known_to_both(&a, &b).await;
    // The database takes no new connection (the pools keep theirs), and every listening
    // connection is ended: the logout's announcement reaches no one.
    let pool = a.db.pool();
    let name: String = sqlx::query_scalar("select cast(current_database() as text)")
        .fetch_one(pool)
        .await
        .unwrap();
    // From the server's maintenance database: no one may bar their own.
    let admin_url = std::env::var("TEST_DATABASE_URL").unwrap();
    let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url)
        .await
        .unwrap();
    let connections =
        |allowed: bool| format!("alter database \"{name}\" with allow_connections = {allowed}");
    sqlx::query(sqlx::AssertSqlSafe(connections(false)))
        .execute(&mut admin)
        .await
        .unwrap();
    let ended: Vec<bool> = sqlx::query_scalar(
        "select pg_terminate_backend(pid) from pg_stat_activity \
         where datname = current_database() and query ilike 'listen%'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(!ended.is_empty(), "the listeners were found");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let response = a
        .cookie_post("/api/auth/logout", Some(&signed.refresh_token()), &[])
        .await;
    sqlx::query(sqlx::AssertSqlSafe(connections(true)))
        .execute(&mut admin)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    refused_within_two_seconds(&b, &signed.session.access_token, "a logout unheard").await;

    // Once connections are taken again, every instance listens again...
    let started = Instant::now();
    loop {
        let listening: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity \
             where datname = current_database() and query ilike 'listen%'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if listening >= ended.len() as i64 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the listeners came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ...and hears the next change: the other instance forgets the person because it was
    // told (an eviction), not only because it emptied its cache as it does when unheard.
    let (_, again) = known_to_both(&a, &b).await;
    let users = &b.state.core.users;
    let (evictions, clears) = (users.evictions(), users.clears());
    let response = a
        .cookie_post("/api/auth/logout", Some(&again.refresh_token()), &[])
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    refused_within_two_seconds(&b, &again.session.access_token, "a logout heard again").await;
    assert!(
        users.evictions() - evictions > users.clears() - clears,
        "the logout's announcement was heard after the listener came back"
    );
}

#[tokio::test]
async fn a_replay_caught_on_one_instance_stops_the_session_on_the_other_within_two_seconds() {
    let Some((a, b)) = pair().await else { return };
    let (_, signed) = known_to_both(&a, &b).await;
    let rotated = a.refresh(&signed.refresh_token()).await;
    let token = &rotated.session.access_token;
    assert_eq!(a.me_raw(token).await.status(), StatusCode::OK);
    // The old token again, past the grace window, on the other instance: a thief's replay.
    a.clock.advance(11);
    let replay = b.refresh_raw(&signed.refresh_token()).await;
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    refused_within_two_seconds(&a, token, "a replay caught elsewhere").await;
}

/// Stops (SIGSTOP) the database backends of every listening connection until dropped:
/// connections that stay open and say nothing, as one a firewall dropped silently.
struct StalledListeners(Vec<i32>);

impl StalledListeners {
    async fn now(app: &TestApp) -> StalledListeners {
        let pids: Vec<i32> = sqlx::query_scalar(
            "select pid from pg_stat_activity \
             where datname = current_database() and query ilike 'listen%'",
        )
        .fetch_all(app.db.pool())
        .await
        .unwrap();
        assert!(!pids.is_empty(), "the listeners were found");
        for pid in &pids {
            // SAFETY: a plain signal to a process of the test's own PostgreSQL server.
            assert_eq!(unsafe { libc::kill(*pid, libc::SIGSTOP) }, 0, "stop {pid}");
        }
        StalledListeners(pids)
    }
}

impl Drop for StalledListeners {
    fn drop(&mut self) {
        for pid in &self.0 {
            // SAFETY: as above; resumes what `now` stopped, also when the test failed.
            unsafe { libc::kill(*pid, libc::SIGCONT) };
        }
    }
}

#[tokio::test]
async fn a_change_made_while_the_listener_silently_stalls_is_still_seen_within_two_seconds() {
    let Some((a, b)) = pair().await else { return };
    let (_, signed) = known_to_both(&a, &b).await;
    let stalled = StalledListeners::now(&a).await;
    let response = a
        .cookie_post("/api/auth/logout", Some(&signed.refresh_token()), &[])
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    refused_within_two_seconds(&b, &signed.session.access_token, "a logout unheard").await;
    drop(stalled);
}

#[tokio::test]
async fn the_grace_window_is_judged_by_the_databases_clock() {
    // The second instance's clock is 20 s ahead: by its own clock the racing tab's
    // refresh would come 20 s after the rotation, past the 10 s window, and be taken for
    // a replay that ends the session.
    let a = spawn_app().await;
    let b = a.another_instance_off_by(&[], 20).await;
    let first = a.register(&unique_email()).await;
    let rotated = a.refresh(&first.refresh_token()).await;
    let racing = b.refresh(&first.refresh_token()).await;
    assert_eq!(racing.refresh_token(), rotated.refresh_token(), "converged");
    // And the window still closes: 11 s later by every clock, a replay ends the login.
    a.clock.advance(11);
    b.clock.advance(11);
    assert_eq!(
        b.refresh_raw(&first.refresh_token()).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

/// Two instances on one database, on SQLite as well: the refresh store is the database.
async fn two() -> (TestApp, TestApp) {
    let a = spawn_app().await;
    let b = a.another_instance(&[]).await;
    (a, b)
}

#[tokio::test]
async fn two_tabs_refreshing_at_once_on_two_instances_converge() {
    let (a, b) = two().await;
    for _ in 0..5 {
        let first = a.register(&unique_email()).await;
        let token = first.refresh_token();
        let (on_a, on_b) = tokio::join!(a.refresh(&token), b.refresh(&token));
        assert_eq!(
            on_a.refresh_token(),
            on_b.refresh_token(),
            "one newest token"
        );
        // The family did not fork: the newest rotates on either instance.
        b.refresh(&on_a.refresh_token()).await;
    }
}

#[tokio::test]
async fn a_replay_on_one_instance_ends_the_login_on_both() {
    let (a, b) = two().await;
    let first = a.register(&unique_email()).await;
    let second = a.refresh(&first.refresh_token()).await;
    a.clock.advance(11);
    let replay = b.refresh_raw(&first.refresh_token()).await;
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    let body: app::api::ErrorBody = replay.json().await.unwrap();
    assert_eq!(body.error.code, app::api::ErrorCode::RefreshReused);
    assert_eq!(
        a.refresh_raw(&second.refresh_token()).await.status(),
        StatusCode::UNAUTHORIZED,
        "the honest tab's newest token is dead on the other instance too"
    );
}
