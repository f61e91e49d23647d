//! Passkeys through the API: the options each ceremony starts with, and the answers it
//! refuses. (A real authenticator's journey is Playwright's, with Chromium's virtual
//! authenticator: `end2end/tests/passkeys.spec.ts`.)

use crate::helpers::{assert_error, spawn_app, spawn_app_with, unique_email, TestApp};
use crate::mfa::call;
use app::api::ErrorCode;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// WebAuthn needs a host name: the relying party id is `PUBLIC_URL`'s host.
async fn app() -> TestApp {
    spawn_app_with(&[("PUBLIC_URL", "http://localhost:3000")]).await
}

#[tokio::test]
async fn registration_asks_for_a_discoverable_credential_with_user_verification() {
    let app = app().await;
    let person = app.register(&unique_email()).await;
    let token = &person.session.access_token;
    let response = call(
        &app,
        "POST",
        "/api/me/passkeys/register/start",
        token,
        json!({"name": "Laptop"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let options: Value = response.json().await.unwrap();
    let key = &options["publicKey"];
    assert_eq!(key["rp"]["id"], "localhost");
    assert_eq!(key["user"]["name"], person.session.user.email);
    assert_eq!(key["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(
        key["authenticatorSelection"]["userVerification"],
        "required"
    );
    assert!(key["challenge"].as_str().unwrap().len() >= 43, "{options}");
    // The ceremony is kept under its challenge, for whichever instance gets the finish.
    let (count,): (i64,) =
        sqlx::query_as("select count(*) from webauthn_ceremonies where kind = 'register'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert_eq!(count, 1);
    let list = call(&app, "GET", "/api/me/passkeys", token, json!(null)).await;
    assert_eq!(list.status(), StatusCode::OK);
    assert_eq!(list.json::<Value>().await.unwrap(), json!([]));
}

#[tokio::test]
async fn a_registration_answer_that_is_no_answer_is_refused() {
    let app = app().await;
    let token = app.register(&unique_email()).await.session.access_token;
    let start: Value = call(
        &app,
        "POST",
        "/api/me/passkeys/register/start",
        &token,
        json!({}),
    )
    .await
    .json()
    .await
    .unwrap();
    let challenge = start["publicKey"]["challenge"]
        .as_str()
        .unwrap()
        .to_string();
    let client_data = base64url(
        &json!({
            "type": "webauthn.create",
            "challenge": challenge,
            "origin": "http://localhost:3000",
        })
        .to_string(),
    );
    for body in [json!({}), made_up_registration(&client_data)] {
        let response = call(
            &app,
            "POST",
            "/api/me/passkeys/register/finish",
            &token,
            body,
        )
        .await;
        assert_error(response, StatusCode::BAD_REQUEST, ErrorCode::PasskeyInvalid).await;
    }
    // The challenge answered once (badly): the ceremony is gone.
    let (count,): (i64,) = sqlx::query_as("select count(*) from webauthn_ceremonies")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(count, 0);
    let list: Value = call(&app, "GET", "/api/me/passkeys", &token, json!(null))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn a_registration_begun_by_one_person_cannot_be_finished_by_another() {
    let app = app().await;
    let ada = app.register(&unique_email()).await.session.access_token;
    let eve = app.register(&unique_email()).await.session.access_token;
    let start: Value = call(
        &app,
        "POST",
        "/api/me/passkeys/register/start",
        &ada,
        json!({}),
    )
    .await
    .json()
    .await
    .unwrap();
    let client_data = base64url(
        &json!({
            "type": "webauthn.create",
            "challenge": start["publicKey"]["challenge"],
            "origin": "http://localhost:3000",
        })
        .to_string(),
    );
    let body = made_up_registration(&client_data);
    let response = call(&app, "POST", "/api/me/passkeys/register/finish", &eve, body).await;
    assert_error(response, StatusCode::BAD_REQUEST, ErrorCode::PasskeyInvalid).await;
    // Ada's registration is still waiting for her answer: Eve's did not touch it.
    let (count,): (i64,) = sqlx::query_as("select count(*) from webauthn_ceremonies")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn a_new_registration_replaces_the_persons_waiting_one() {
    let app = app().await;
    let ada = app.register(&unique_email()).await.session;
    let eve = app.register(&unique_email()).await.session;
    let start = |token: String| {
        let app = &app;
        async move {
            let response = call(
                app,
                "POST",
                "/api/me/passkeys/register/start",
                &token,
                json!({}),
            )
            .await;
            assert_eq!(response.status(), StatusCode::OK);
        }
    };
    for _ in 0..5 {
        start(ada.access_token.clone()).await;
    }
    start(eve.access_token.clone()).await;
    // However often Ada starts, one registration of hers waits; Eve's is left alone.
    let waiting = |user_id: String| {
        let app = &app;
        async move {
            let (count,): (i64,) = sqlx::query_as(
                "select count(*) from webauthn_ceremonies where kind = 'register' and user_id = $1",
            )
            .bind(user_id)
            .fetch_one(app.db.pool())
            .await
            .unwrap();
            count
        }
    };
    assert_eq!(waiting(ada.user.id.clone()).await, 1);
    assert_eq!(waiting(eve.user.id.clone()).await, 1);
    // Starts at once (two tabs, a script) take turns: still one.
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (client, url) = (
            app.client.clone(),
            app.url("/api/me/passkeys/register/start"),
        );
        let token = ada.access_token.clone();
        burst.spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({}))
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    for status in burst.join_all().await {
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(waiting(ada.user.id.clone()).await, 1);
}

#[tokio::test]
async fn registration_starts_are_limited_per_person() {
    let app = spawn_app_with(&[
        ("PUBLIC_URL", "http://localhost:3000"),
        ("RATE_LIMIT_ENABLED", "true"),
    ])
    .await;
    let ada = app.register(&unique_email()).await.session.access_token;
    let eve = app.register(&unique_email()).await.session.access_token;
    const START: &str = "/api/me/passkeys/register/start";
    for _ in 0..20 {
        let response = call(&app, "POST", START, &ada, json!({})).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let refused = call(&app, "POST", START, &ada, json!({})).await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_error(
        refused,
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
    )
    .await;
    // Her budget is hers: another person starts as before.
    let response = call(&app, "POST", START, &eve, json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn sign_in_options_ask_for_any_passkey_with_user_verification() {
    let app = app().await;
    let response = app.post_json("/api/auth/passkey/start", json!(null)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let options: Value = response.json().await.unwrap();
    assert_eq!(options["publicKey"]["rpId"], "localhost");
    assert_eq!(options["publicKey"]["userVerification"], "required");
    assert_eq!(options["publicKey"]["allowCredentials"], json!([]));
    assert!(options.get("mediation").is_none(), "{options}");
    // An answer that is none, or names a challenge nobody asked: 401, as a wrong password.
    let client_data =
        base64url(r#"{"type":"webauthn.get","challenge":"AAAA","origin":"http://localhost:3000"}"#);
    for body in [
        json!({"nothing": true}),
        made_up_sign_in(&client_data, json!(null)),
    ] {
        let response = app.post_json("/api/auth/passkey/finish", body).await;
        assert!(crate::helpers::refresh_cookie(response.headers()).is_none());
        assert_error(
            response,
            StatusCode::UNAUTHORIZED,
            ErrorCode::PasskeyInvalid,
        )
        .await;
    }
}

#[tokio::test]
async fn an_answer_to_a_real_challenge_without_a_known_passkey_is_refused() {
    let app = app().await;
    let options: Value = app
        .post_json("/api/auth/passkey/start", json!(null))
        .await
        .json()
        .await
        .unwrap();
    let client_data = base64url(
        &json!({
            "type": "webauthn.get",
            "challenge": options["publicKey"]["challenge"],
            "origin": "http://localhost:3000",
        })
        .to_string(),
    );
    let handle = base64url_bytes(uuid::Uuid::new_v4().as_bytes());
    let body = made_up_sign_in(&client_data, json!(handle));
    let response = app.post_json("/api/auth/passkey/finish", body).await;
    assert_error(
        response,
        StatusCode::UNAUTHORIZED,
        ErrorCode::PasskeyInvalid,
    )
    .await;
}

#[tokio::test]
async fn removing_a_passkey_that_is_not_yours_is_not_found() {
    let app = app().await;
    let token = app.register(&unique_email()).await.session.access_token;
    let response = call(
        &app,
        "DELETE",
        "/api/me/passkeys/00000000-0000-4000-8000-000000000000",
        &token,
        json!(null),
    )
    .await;
    assert_error(response, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
}

#[tokio::test]
async fn a_site_reached_by_its_ip_address_has_no_passkeys() {
    let app = spawn_app().await; // PUBLIC_URL http://127.0.0.1:…
    let token = app.register(&unique_email()).await.session.access_token;
    let response = call(
        &app,
        "POST",
        "/api/me/passkeys/register/start",
        &token,
        json!({}),
    )
    .await;
    assert_error(response, StatusCode::BAD_REQUEST, ErrorCode::PasskeyInvalid).await;
    let response = app.post_json("/api/auth/passkey/start", json!(null)).await;
    assert_error(
        response,
        StatusCode::UNAUTHORIZED,
        ErrorCode::PasskeyInvalid,
    )
    .await;
}

#[tokio::test]
async fn passkey_names_are_checked() {
    let app = app().await;
    let token = app.register(&unique_email()).await.session.access_token;
    for name in ["x".repeat(61), "bad\u{7}name".into()] {
        let response = call(
            &app,
            "POST",
            "/api/me/passkeys/register/start",
            &token,
            json!({"name": name}),
        )
        .await;
        assert_error(
            response,
            StatusCode::BAD_REQUEST,
            ErrorCode::ValidationFailed,
        )
        .await;
    }
}

/// A sign-in answer with `client_data` and `user_handle` and nothing an authenticator signed.
fn made_up_sign_in(client_data: &str, user_handle: Value) -> Value {
    json!({"id": "AQID", "rawId": "AQID", "type": "public-key",
           "response": {"clientDataJSON": client_data, "authenticatorData": "AAAA",
                        "signature": "AAAA", "userHandle": user_handle}})
}

/// A registration answer with `client_data` and an attestation of no authenticator.
fn made_up_registration(client_data: &str) -> Value {
    json!({"id": "AQID", "rawId": "AQID", "type": "public-key",
           "response": {"clientDataJSON": client_data, "attestationObject": "o2NmbXRkbm9uZQ"}})
}

fn base64url(text: &str) -> String {
    base64url_bytes(text.as_bytes())
}

fn base64url_bytes(bytes: &[u8]) -> String {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn a_person_with_a_passkey_is_offered_it_at_the_second_step() {
    let app = app().await;
    let person = crate::mfa::enrolled(&app).await;
    let body = crate::helpers::assert_error(
        app.login_raw(&person.email, crate::helpers::PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        ErrorCode::MfaRequired,
    )
    .await;
    assert_eq!(
        body.error.methods.as_deref(),
        Some(&["totp".to_string(), "recovery_code".to_string()][..])
    );
    let user = server::db::users::find_by_email(app.db.pool(), &person.email)
        .await
        .unwrap()
        .unwrap();
    let session = app.current_session(&person.access_token).await.id;
    server::db::passkeys::insert(
        app.db.pool(),
        server::db::passkeys::NewPasskey {
            id: "22222222-2222-4222-8222-222222222222",
            user_id: &user.id,
            session_id: &session,
            credential_id: "BQYHCA",
            name: "Laptop",
            passkey: "{}",
            now: 0,
        },
    )
    .await
    .unwrap();
    let body = crate::helpers::assert_error(
        app.login_raw(&person.email, crate::helpers::PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        ErrorCode::MfaRequired,
    )
    .await;
    assert_eq!(
        body.error.methods.as_deref(),
        Some(
            &[
                "totp".to_string(),
                "recovery_code".to_string(),
                "passkey".to_string()
            ][..]
        )
    );
}

#[tokio::test]
async fn a_passkey_is_kept_only_while_its_registering_session_is_live() {
    use server::db::passkeys::{insert, InsertPasskeyError, NewPasskey};
    let app = app().await;
    let person = app.register(&unique_email()).await;
    let session = app.current_session(&person.session.access_token).await.id;
    let now = app.clock.now_unix();
    let passkey = |id: &'static str, credential_id: &'static str| NewPasskey {
        id,
        user_id: &person.session.user.id,
        session_id: &session,
        credential_id,
        name: "Laptop",
        passkey: "{}",
        now,
    };
    insert(
        app.db.pool(),
        passkey("33333333-3333-4333-8333-333333333333", "AQ"),
    )
    .await
    .unwrap();
    // The session ends (here a sign-out; a reset or a provider proving an unproven
    // address ends them all): a registration finishing after it keeps nothing.
    let response = app
        .cookie_post("/api/auth/logout", Some(&person.refresh_token()), &[])
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let refused = insert(
        app.db.pool(),
        passkey("44444444-4444-4444-8444-444444444444", "Ag"),
    )
    .await;
    assert!(
        matches!(refused, Err(InsertPasskeyError::SessionEnded)),
        "{refused:?}"
    );
    let (count,): (i64,) = sqlx::query_as("select count(*) from passkeys")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn an_answer_to_no_ceremony_is_refused_without_waiting_for_a_writer() {
    if crate::helpers::on_postgres() {
        return; // The write turn is SQLite's.
    }
    let app = app().await;
    // Someone else holds the one write turn (a burst of sign-ins, say).
    let turn = app.db.begin_write().await.unwrap();
    let client_data = base64url(
        r#"{"type":"webauthn.get","challenge":"bm9ib2R5LWFza2Vk","origin":"http://localhost:3000"}"#,
    );
    let body = made_up_sign_in(&client_data, json!(null));
    // Refused on a read: a flood of made-up answers takes no write turn from anyone (it
    // was 503 `overloaded` after waiting 5 s for one).
    let response = app.post_json("/api/auth/passkey/finish", body).await;
    assert_error(
        response,
        StatusCode::UNAUTHORIZED,
        ErrorCode::PasskeyInvalid,
    )
    .await;
    turn.rollback().await.unwrap();
}
