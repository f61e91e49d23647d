//! The second factor: an authenticator app's codes computed here from the secret the setup
//! gives, recovery codes, and the second step of a sign-in.

use crate::helpers::{
    assert_error, refresh_cookie, signed, spawn_app, spawn_app_with, unique_email, TestApp,
    PASSWORD,
};
use app::api::{ErrorCode, MfaStatus, RecoveryCodes, TotpSetup};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use server::auth::totp;

/// A person with the second factor on: their authenticator secret and recovery codes.
pub(crate) struct Enrolled {
    pub email: String,
    pub access_token: String,
    pub secret: Vec<u8>,
    pub recovery_codes: Vec<String>,
}

pub(crate) async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Value,
) -> Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    app.client
        .request(method, app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn setup(app: &TestApp, token: &str) -> TotpSetup {
    let response = call(app, "POST", "/api/me/mfa/totp/setup", token, json!(null)).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

pub(crate) fn secret_of(setup: &TotpSetup) -> Vec<u8> {
    totp_rs::Secret::try_from_base32(&setup.secret)
        .unwrap()
        .as_ref()
        .to_vec()
}

/// The code the person's app shows now.
pub(crate) fn code(app: &TestApp, secret: &[u8]) -> String {
    totp::code_at(secret, app.clock.now_unix()).unwrap()
}

/// Moves to the next 30-second step, whose code has not been used yet.
pub(crate) fn next_step(app: &TestApp) {
    app.clock.advance(totp::STEP_SECS);
}

pub(crate) async fn enrolled(app: &TestApp) -> Enrolled {
    let email = unique_email();
    let person = app.register(&email).await;
    let token = person.session.access_token;
    let setup = setup(app, &token).await;
    let secret = secret_of(&setup);
    let response = call(
        app,
        "POST",
        "/api/me/mfa/totp/confirm",
        &token,
        json!({"code": code(app, &secret)}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let codes: RecoveryCodes = response.json().await.unwrap();
    next_step(app);
    Enrolled {
        email,
        access_token: token,
        secret,
        recovery_codes: codes.recovery_codes,
    }
}

/// A login with the right password: `mfa_required` and its token.
pub(crate) async fn first_step(app: &TestApp, email: &str) -> String {
    let response = app.login_raw(email, PASSWORD).await;
    assert!(
        refresh_cookie(response.headers()).is_none(),
        "no session yet"
    );
    let body = assert_error(response, StatusCode::UNAUTHORIZED, ErrorCode::MfaRequired).await;
    assert_eq!(
        body.error.methods.as_deref(),
        Some(&["totp".to_string(), "recovery_code".to_string()][..])
    );
    body.error.mfa_token.expect("an mfa_token")
}

pub(crate) async fn verify(app: &TestApp, body: Value) -> Response {
    app.post_json("/api/auth/mfa/verify", body).await
}

pub(crate) async fn status(app: &TestApp, token: &str) -> MfaStatus {
    let response = call(app, "GET", "/api/me/mfa", token, json!(null)).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

pub(crate) async fn audit_actions(app: &TestApp, subject: &str) -> Vec<String> {
    let rows = server::db::audit::page(app.db.pool(), 200, 0)
        .await
        .unwrap();
    rows.into_iter()
        .filter(|e| e.subject_id.as_deref() == Some(subject))
        .map(|e| e.action)
        .collect()
}

/// The sign-in waiting on `mfa_token` is over: even a current code is refused.
async fn assert_ended(app: &TestApp, mfa_token: &str, secret: &[u8]) {
    let response = verify(
        app,
        json!({"mfa_token": mfa_token, "code": code(app, secret)}),
    )
    .await;
    assert_error(
        response,
        StatusCode::UNAUTHORIZED,
        ErrorCode::MfaTokenInvalid,
    )
    .await;
}

#[tokio::test]
async fn setup_and_confirm_turn_the_second_factor_on_with_ten_recovery_codes() {
    let app = spawn_app().await;
    let person = app.register(&unique_email()).await;
    let token = &person.session.access_token;
    assert!(!status(&app, token).await.totp_enabled);
    let first = setup(&app, token).await;
    assert!(first.otpauth_uri.starts_with("otpauth://totp/127.0.0.1:"));
    assert!(first
        .otpauth_uri
        .contains(&format!("secret={}", first.secret)));
    assert!(first.qr_svg.starts_with("<?xml") && first.qr_svg.contains("<svg"));
    // A second setup replaces the pending secret: the first one's codes confirm nothing.
    let second = setup(&app, token).await;
    assert_ne!(first.secret, second.secret);
    let stale = code(&app, &secret_of(&first));
    let response = call(
        &app,
        "POST",
        "/api/me/mfa/totp/confirm",
        token,
        json!({"code": stale}),
    )
    .await;
    assert_error(response, StatusCode::BAD_REQUEST, ErrorCode::CodeInvalid).await;
    assert!(!status(&app, token).await.totp_enabled);

    let good = code(&app, &secret_of(&second));
    let response = call(
        &app,
        "POST",
        "/api/me/mfa/totp/confirm",
        token,
        json!({"code": good}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let codes: RecoveryCodes = response.json().await.unwrap();
    assert_eq!(codes.recovery_codes.len(), 10);
    let distinct: std::collections::HashSet<_> = codes.recovery_codes.iter().collect();
    assert_eq!(distinct.len(), 10);
    assert_eq!(
        status(&app, token).await,
        MfaStatus {
            totp_enabled: true,
            recovery_codes_left: 10
        }
    );
    // Only digests are stored.
    let stored: Vec<(String,)> = sqlx::query_as("select code_digest from recovery_codes")
        .fetch_all(app.db.pool())
        .await
        .unwrap();
    assert_eq!(stored.len(), 10);
    for code in &codes.recovery_codes {
        assert!(stored
            .iter()
            .all(|(d,)| !d.contains(&code.replace('-', ""))));
    }
    // Nor is the secret stored in the clear.
    let (sealed,): (String,) = sqlx::query_as("select secret_sealed from totp_secrets")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert!(!sealed.contains(&second.secret));

    let again = call(&app, "POST", "/api/me/mfa/totp/setup", token, json!(null)).await;
    assert_error(again, StatusCode::CONFLICT, ErrorCode::MfaAlreadyEnabled).await;
    let response = call(
        &app,
        "POST",
        "/api/me/mfa/totp/confirm",
        token,
        json!({"code": good}),
    )
    .await;
    assert_error(response, StatusCode::CONFLICT, ErrorCode::MfaNotPending).await;
    assert!(audit_actions(&app, &person.session.user.id)
        .await
        .contains(&"mfa_enabled".to_string()));
}

#[tokio::test]
async fn confirm_needs_a_pending_secret_and_a_code() {
    let app = spawn_app().await;
    let token = app.register(&unique_email()).await.session.access_token;
    let response = call(
        &app,
        "POST",
        "/api/me/mfa/totp/confirm",
        &token,
        json!({"code": "123456"}),
    )
    .await;
    assert_error(response, StatusCode::CONFLICT, ErrorCode::MfaNotPending).await;
    setup(&app, &token).await;
    let response = call(
        &app,
        "POST",
        "/api/me/mfa/totp/confirm",
        &token,
        json!({"code": ""}),
    )
    .await;
    assert_error(
        response,
        StatusCode::BAD_REQUEST,
        ErrorCode::ValidationFailed,
    )
    .await;
    let response = app
        .client
        .post(app.url("/api/me/mfa/totp/setup"))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, ErrorCode::TokenMissing).await;
}

#[tokio::test]
async fn a_login_with_the_second_factor_on_completes_with_a_code() {
    let app = spawn_app().await;
    let person = enrolled(&app).await;
    let mfa_token = first_step(&app, &person.email).await;
    // The wrong password still says nothing of a second factor.
    let wrong = app.login_raw(&person.email, "not the password").await;
    let body = assert_error(
        wrong,
        StatusCode::UNAUTHORIZED,
        ErrorCode::InvalidCredentials,
    )
    .await;
    assert!(body.error.mfa_token.is_none());

    let response = verify(
        &app,
        json!({"mfa_token": mfa_token, "code": code(&app, &person.secret)}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let session = signed(response).await;
    let cookie = session
        .cookie
        .clone()
        .expect("the refresh cookie, as a login sets it");
    assert!(cookie.attributes.iter().any(|a| a == "HttpOnly"));
    assert_eq!(session.session.user.email, person.email);
    assert_eq!(
        app.me_raw(&session.session.access_token).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.current_session(&session.session.access_token)
            .await
            .method,
        "password"
    );
    // The session refreshes like any other.
    app.refresh(&session.refresh_token()).await;
    // The token completed one sign-in.
    next_step(&app);
    let again = verify(
        &app,
        json!({"mfa_token": mfa_token, "code": code(&app, &person.secret)}),
    )
    .await;
    assert_error(again, StatusCode::UNAUTHORIZED, ErrorCode::MfaTokenInvalid).await;
    let actions = audit_actions(&app, &session.session.user.id).await;
    assert!(
        actions.contains(&"login_succeeded".to_string()),
        "{actions:?}"
    );
}

#[tokio::test]
async fn a_code_is_accepted_once() {
    let app = spawn_app().await;
    let person = enrolled(&app).await;
    let now = code(&app, &person.secret);
    let first = first_step(&app, &person.email).await;
    let response = verify(&app, json!({"mfa_token": first, "code": now})).await;
    assert_eq!(response.status(), StatusCode::OK);
    // The same code, inside its 30 s, for another sign-in: refused.
    let second = first_step(&app, &person.email).await;
    let replay = verify(&app, json!({"mfa_token": second, "code": now})).await;
    assert_error(replay, StatusCode::BAD_REQUEST, ErrorCode::CodeInvalid).await;
    // So is the previous step's code, though drift would admit it.
    app.clock.advance(10);
    let previous = totp::code_at(&person.secret, app.clock.now_unix() - totp::STEP_SECS).unwrap();
    if previous != now {
        let older = verify(&app, json!({"mfa_token": second, "code": previous})).await;
        assert_error(older, StatusCode::BAD_REQUEST, ErrorCode::CodeInvalid).await;
    }
    // The next step's code opens it.
    next_step(&app);
    let response = verify(
        &app,
        json!({"mfa_token": second, "code": code(&app, &person.secret)}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_confirming_code_cannot_sign_in() {
    let app = spawn_app().await;
    let email = unique_email();
    let token = app.register(&email).await.session.access_token;
    let secret = secret_of(&setup(&app, &token).await);
    let first_code = code(&app, &secret);
    let response = call(
        &app,
        "POST",
        "/api/me/mfa/totp/confirm",
        &token,
        json!({"code": first_code}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mfa_token = first_step(&app, &email).await;
    let response = verify(&app, json!({"mfa_token": mfa_token, "code": first_code})).await;
    assert_error(response, StatusCode::BAD_REQUEST, ErrorCode::CodeInvalid).await;
}

#[tokio::test]
async fn a_recovery_code_works_once() {
    let app = spawn_app().await;
    let person = enrolled(&app).await;
    let recovery = person.recovery_codes[3].clone();
    let mfa_token = first_step(&app, &person.email).await;
    // As people type it: upper case, no dash.
    let typed = recovery.to_uppercase().replace('-', "");
    let response = verify(
        &app,
        json!({"mfa_token": mfa_token, "recovery_code": typed}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let session = signed(response).await;
    let mfa_token = first_step(&app, &person.email).await;
    let again = verify(
        &app,
        json!({"mfa_token": mfa_token, "recovery_code": recovery}),
    )
    .await;
    assert_error(again, StatusCode::BAD_REQUEST, ErrorCode::CodeInvalid).await;
    assert_eq!(
        status(&app, &person.access_token).await.recovery_codes_left,
        9
    );
    let actions = audit_actions(&app, &session.session.user.id).await;
    assert!(
        actions.contains(&"recovery_code_used".to_string()),
        "{actions:?}"
    );
    assert!(actions.contains(&"mfa_failed".to_string()), "{actions:?}");
}

#[tokio::test]
async fn five_wrong_codes_end_the_mfa_token() {
    let app = spawn_app().await;
    let person = enrolled(&app).await;
    let mfa_token = first_step(&app, &person.email).await;
    let right = code(&app, &person.secret);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..4 {
        let response = verify(&app, json!({"mfa_token": mfa_token, "code": wrong})).await;
        assert_error(response, StatusCode::BAD_REQUEST, ErrorCode::CodeInvalid).await;
    }
    let fifth = verify(
        &app,
        json!({"mfa_token": mfa_token, "recovery_code": "aaaaa-aaaaa"}),
    )
    .await;
    // That token never works again: no wait would help.
    assert!(fifth.headers().get("retry-after").is_none());
    assert_error(fifth, StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited).await;
    let response = verify(&app, json!({"mfa_token": mfa_token, "code": right})).await;
    assert_error(
        response,
        StatusCode::UNAUTHORIZED,
        ErrorCode::MfaTokenInvalid,
    )
    .await;
    // A new sign-in starts over.
    let fresh = first_step(&app, &person.email).await;
    let response = verify(&app, json!({"mfa_token": fresh, "code": right})).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn wrong_codes_are_limited_per_account_across_tokens() {
    let app = spawn_app_with(&[("RATE_LIMIT_ENABLED", "true")]).await;
    let person = enrolled(&app).await;
    let right = code(&app, &person.secret);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    // Two tokens of four wrong codes each, then two more on a third: ten in all.
    for wrong_codes in [4, 4, 2] {
        let mfa_token = first_step(&app, &person.email).await;
        for _ in 0..wrong_codes {
            let response = verify(&app, json!({"mfa_token": mfa_token, "code": wrong})).await;
            assert_error(response, StatusCode::BAD_REQUEST, ErrorCode::CodeInvalid).await;
        }
    }
    let mfa_token = first_step(&app, &person.email).await;
    let response = verify(&app, json!({"mfa_token": mfa_token, "code": right})).await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0 && retry_after <= 15 * 60, "{retry_after}");
    assert_error(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
    )
    .await;
    // The window passes: the right code opens it.
    app.clock.advance(15 * 60);
    let mfa_token = first_step(&app, &person.email).await;
    let response = verify(
        &app,
        json!({"mfa_token": mfa_token, "code": code(&app, &person.secret)}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_mfa_token_lasts_five_minutes() {
    let app = spawn_app().await;
    let person = enrolled(&app).await;
    let mfa_token = first_step(&app, &person.email).await;
    app.clock.advance(5 * 60);
    assert_ended(&app, &mfa_token, &person.secret).await;
}

#[tokio::test]
async fn verify_refuses_malformed_requests() {
    let app = spawn_app().await;
    let person = enrolled(&app).await;
    let mfa_token = first_step(&app, &person.email).await;
    for body in [
        json!({"mfa_token": mfa_token}),
        json!({"mfa_token": mfa_token, "code": "123456", "recovery_code": "aaaaa-aaaaa"}),
        json!({"mfa_token": "", "code": "123456"}),
        json!({"mfa_token": mfa_token, "code": ""}),
    ] {
        let response = verify(&app, body.clone()).await;
        assert_error(
            response,
            StatusCode::BAD_REQUEST,
            ErrorCode::ValidationFailed,
        )
        .await;
    }
    for token in ["nope", &"A".repeat(43)] {
        let response = verify(&app, json!({"mfa_token": token, "code": "123456"})).await;
        assert_error(
            response,
            StatusCode::UNAUTHORIZED,
            ErrorCode::MfaTokenInvalid,
        )
        .await;
    }
    // Still usable: none of those was a code for it.
    let response = verify(
        &app,
        json!({"mfa_token": mfa_token, "code": code(&app, &person.secret)}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn non_browser_clients_get_the_refresh_token_in_the_body() {
    let app = spawn_app().await;
    let person = enrolled(&app).await;
    let mfa_token = first_step(&app, &person.email).await;
    let response = app
        .client
        .post(app.url("/api/auth/mfa/verify"))
        .header("x-refresh-token-delivery", "body")
        .json(&json!({"mfa_token": mfa_token, "code": code(&app, &person.secret)}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let session = signed(response).await;
    assert!(session.cookie.is_none());
    app.refresh(&session.session.refresh_token.clone().unwrap())
        .await;
}

#[tokio::test]
async fn a_person_disabled_between_the_steps_gets_no_session() {
    let app = spawn_app().await;
    let person = enrolled(&app).await;
    let admin = app.admin().await;
    let mfa_token = first_step(&app, &person.email).await;
    let user = server::db::users::find_by_email(app.db.pool(), &person.email)
        .await
        .unwrap()
        .unwrap();
    let response = app
        .client
        .patch(app.url(&format!("/api/admin/users/{}", user.id)))
        .bearer_auth(&admin.session.access_token)
        .json(&json!({"active": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = verify(
        &app,
        json!({"mfa_token": mfa_token, "code": code(&app, &person.secret)}),
    )
    .await;
    assert!(refresh_cookie(response.headers()).is_none());
    assert_error(response, StatusCode::FORBIDDEN, ErrorCode::AccountDisabled).await;
}

#[tokio::test]
async fn turning_the_second_factor_off_takes_a_code() {
    let app = spawn_app().await;
    let person = enrolled(&app).await;
    let token = &person.access_token;
    let right = code(&app, &person.secret);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let response = call(
        &app,
        "DELETE",
        "/api/me/mfa/totp",
        token,
        json!({"code": wrong}),
    )
    .await;
    assert_error(response, StatusCode::BAD_REQUEST, ErrorCode::CodeInvalid).await;
    let response = call(
        &app,
        "DELETE",
        "/api/me/mfa/totp",
        token,
        json!({"code": "not a code"}),
    )
    .await;
    assert_error(response, StatusCode::BAD_REQUEST, ErrorCode::CodeInvalid).await;
    assert!(status(&app, token).await.totp_enabled);
    let response = call(
        &app,
        "DELETE",
        "/api/me/mfa/totp",
        token,
        json!({"code": right}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        status(&app, token).await,
        MfaStatus {
            totp_enabled: false,
            recovery_codes_left: 0
        }
    );
    // A password is enough again.
    app.login(&person.email).await;
    let actions = audit_actions(&app, &app.login(&person.email).await.session.user.id).await;
    assert!(actions.contains(&"mfa_disabled".to_string()), "{actions:?}");
}

#[tokio::test]
async fn a_recovery_code_turns_the_second_factor_off_too() {
    let app = spawn_app().await;
    let person = enrolled(&app).await;
    let response = call(
        &app,
        "DELETE",
        "/api/me/mfa/totp",
        &person.access_token,
        json!({"code": person.recovery_codes[0]}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let session = app.login(&person.email).await;
    let actions = audit_actions(&app, &session.session.user.id).await;
    assert!(
        actions.contains(&"recovery_code_used".to_string()),
        "{actions:?}"
    );
}

#[tokio::test]
async fn new_recovery_codes_kill_the_old_set() {
    let app = spawn_app().await;
    let person = enrolled(&app).await;
    let token = &person.access_token;
    let response = call(
        &app,
        "POST",
        "/api/me/mfa/recovery-codes",
        token,
        json!({"code": code(&app, &person.secret)}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let fresh: RecoveryCodes = response.json().await.unwrap();
    assert_eq!(fresh.recovery_codes.len(), 10);
    assert!(fresh
        .recovery_codes
        .iter()
        .all(|c| !person.recovery_codes.contains(c)));
    let mfa_token = first_step(&app, &person.email).await;
    let old = verify(
        &app,
        json!({"mfa_token": mfa_token, "recovery_code": person.recovery_codes[0]}),
    )
    .await;
    assert_error(old, StatusCode::BAD_REQUEST, ErrorCode::CodeInvalid).await;
    let new = verify(
        &app,
        json!({"mfa_token": mfa_token, "recovery_code": fresh.recovery_codes[0]}),
    )
    .await;
    assert_eq!(new.status(), StatusCode::OK);
    // A wrong code makes none.
    let response = call(
        &app,
        "POST",
        "/api/me/mfa/recovery-codes",
        token,
        json!({"code": "aaaaa-aaaaa"}),
    )
    .await;
    assert_error(response, StatusCode::BAD_REQUEST, ErrorCode::CodeInvalid).await;
    assert_eq!(status(&app, token).await.recovery_codes_left, 9);
}

#[tokio::test]
async fn an_admin_turns_a_person_s_second_factor_off() {
    let app = spawn_app().await;
    let person = enrolled(&app).await;
    let admin = app.admin().await;
    let user_id = server::db::users::find_by_email(app.db.pool(), &person.email)
        .await
        .unwrap()
        .unwrap()
        .id;
    let waiting = first_step(&app, &person.email).await;
    let path = format!("/api/admin/users/{user_id}/reset-mfa");
    // Not for people who are not admins.
    let response = call(&app, "POST", &path, &person.access_token, json!(null)).await;
    assert_error(response, StatusCode::FORBIDDEN, ErrorCode::Forbidden).await;
    let response = call(
        &app,
        "POST",
        &path,
        &admin.session.access_token,
        json!(null),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    // A sign-in that was waiting for a code is over; a password is enough now.
    assert_ended(&app, &waiting, &person.secret).await;
    app.login(&person.email).await;
    let entries = server::db::audit::page(app.db.pool(), 200, 0)
        .await
        .unwrap();
    let reset = entries
        .iter()
        .find(|e| e.action == "mfa_reset_by_admin")
        .expect("audited");
    assert_eq!(
        reset.actor_id.as_deref(),
        Some(admin.session.user.id.as_str())
    );
    assert_eq!(reset.subject_id.as_deref(), Some(user_id.as_str()));
    let unknown = call(
        &app,
        "POST",
        "/api/admin/users/00000000-0000-4000-8000-000000000000/reset-mfa",
        &admin.session.access_token,
        json!(null),
    )
    .await;
    assert_error(unknown, StatusCode::NOT_FOUND, ErrorCode::NotFound).await;
}

#[tokio::test]
async fn no_secret_or_code_reaches_the_audit_log() {
    let app = spawn_app().await;
    let person = enrolled(&app).await;
    let mfa_token = first_step(&app, &person.email).await;
    verify(
        &app,
        json!({"mfa_token": mfa_token, "recovery_code": person.recovery_codes[1]}),
    )
    .await;
    let entries = server::db::audit::page(app.db.pool(), 200, 0)
        .await
        .unwrap();
    let text = format!("{entries:?}");
    assert!(!text.contains(&mfa_token));
    for code in &person.recovery_codes {
        assert!(!text.contains(code.as_str()), "{text}");
    }
}

#[tokio::test]
async fn a_password_change_ends_sign_ins_waiting_for_their_second_step() {
    let app = spawn_app().await;
    let person = enrolled(&app).await;
    let waiting = first_step(&app, &person.email).await;
    let response = app
        .bearer_post(
            "/api/auth/password/change",
            &person.access_token,
            json!({"current_password": PASSWORD, "new_password": "another good passphrase"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_ended(&app, &waiting, &person.secret).await;
}

/// An admin disabling a person while their second step completes: whichever commits
/// first, no session of the disabled person is left (one opened after the disabling's
/// revocation would come back to life when they are enabled again). On PostgreSQL the two
/// transactions overlap: the disabling is held open here while the second step runs.
#[tokio::test]
async fn a_second_step_racing_a_disabling_leaves_no_session() {
    let app = spawn_app().await;
    let person = enrolled(&app).await;
    let mfa_token = first_step(&app, &person.email).await;
    let user = server::db::users::find_by_email(app.db.pool(), &person.email)
        .await
        .unwrap()
        .unwrap();
    // The disabling's statements, not committed yet.
    let mut disabling = app.db.begin_write().await.unwrap();
    let now = app.clock.now_unix();
    server::db::users::set_active(&mut *disabling, &user.id, false, now)
        .await
        .unwrap();
    server::db::sessions::revoke_all_of_user(&mut *disabling, &user.id, now, "disabled by admin")
        .await
        .unwrap();
    let second_step = tokio::spawn({
        let (client, url) = (app.client.clone(), app.url("/api/auth/mfa/verify"));
        let body = json!({"mfa_token": mfa_token, "code": code(&app, &person.secret)});
        async move { client.post(url).json(&body).send().await.unwrap() }
    });
    // The second step reaches its transaction meanwhile (on SQLite it waits for the write
    // turn this transaction holds).
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    disabling.commit().await.unwrap();
    let response = second_step.await.unwrap();
    let status = response.status();
    let live: i64 = sqlx::query_scalar(
        "select count(*) from refresh_families where user_id = $1 and revoked_at is null",
    )
    .bind(&user.id)
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(
        live, 0,
        "a session of the disabled person is alive ({status})"
    );
}
