//! Signing in with an identity provider, against a real one (oidc-provider, see
//! `provider.rs`): the flow, the account rules, the flow's single use, a provider that is
//! down and comes back.

use crate::helpers::{refresh_cookie, spawn_app_with, unique_email, TestApp, PASSWORD};
use crate::provider::{self, provider, ExtraProvider};
use reqwest::{header, Response, StatusCode};
use serde_json::json;
use server::db::identities::{self, NewIdentity};
use std::time::{Duration, Instant};

/// An app whose identity providers are `ids` of the test provider (or of `issuer`).
async fn app_for(env: Vec<(String, String)>) -> TestApp {
    let vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    spawn_app_with(&vars).await
}

async fn app(ids: &[&str]) -> TestApp {
    let app = app_for(provider().env(ids)).await;
    for id in ids {
        wait_until_discovered(&app, id).await;
    }
    app
}

/// Discovery runs in the background after start: the start route answers 503 until then.
async fn wait_until_discovered(app: &TestApp, id: &str) {
    let started = Instant::now();
    loop {
        let status = app
            .get(&format!("/api/auth/oidc/{id}/start"))
            .await
            .status();
        if status == StatusCode::SEE_OTHER {
            return;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{id} was never discovered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A flow begun at the start route: the provider's URL, and the flow cookie.
struct Flow {
    authorize_url: String,
    cookie: String,
}

async fn start(app: &TestApp, id: &str, query: &str) -> Flow {
    start_with(app, id, query, None).await
}

/// The start route as a browser holding the refresh cookie `refresh` sends it.
async fn start_raw(app: &TestApp, id: &str, query: &str, refresh: Option<&str>) -> Response {
    let mut request = app
        .client
        .get(app.url(&format!("/api/auth/oidc/{id}/start{query}")));
    if let Some(token) = refresh {
        request = request.header(header::COOKIE, format!("refresh_token={token}"));
    }
    request.send().await.expect("start")
}

async fn start_with(app: &TestApp, id: &str, query: &str, refresh: Option<&str>) -> Flow {
    let response = start_raw(app, id, query, refresh).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let set_cookie = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("__Secure-oidc_flow="))
        .expect("a flow cookie, named __Secure-… as it is Secure");
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(set_cookie.contains("Path=/api/auth/oidc"), "{set_cookie}");
    assert!(set_cookie.contains("Max-Age=600"), "{set_cookie}");
    let authorize_url = location(&response);
    assert!(
        authorize_url.contains("code_challenge_method=S256"),
        "{authorize_url}"
    );
    assert!(authorize_url.contains("nonce="), "{authorize_url}");
    assert!(authorize_url.contains("state="), "{authorize_url}");
    Flow {
        authorize_url,
        cookie: set_cookie.split(';').next().unwrap().to_string(),
    }
}

/// The value of `name` in `url`'s query.
fn url_param(url: &str, name: &str) -> String {
    url.split(['?', '&'])
        .find_map(|p| p.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {url}"))
        .to_string()
}

fn location(response: &Response) -> String {
    response
        .headers()
        .get(header::LOCATION)
        .expect("a Location")
        .to_str()
        .unwrap()
        .to_string()
}

/// The provider's redirect back (to the fixed test public URL), sent to `app` with
/// `cookie` (the flow cookie) as the browser would.
async fn callback(app: &TestApp, url: &str, cookie: Option<&str>) -> Response {
    let path = url
        .strip_prefix(provider::PUBLIC_URL)
        .unwrap_or_else(|| panic!("a callback to the app: {url}"));
    let mut request = app.client.get(app.url(path));
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.send().await.expect("callback")
}

/// A whole sign-in as `login` at the provider: the callback's answer.
async fn sign_in_as(app: &TestApp, id: &str, login: &str) -> Response {
    let flow = start(app, id, "").await;
    let back = provider().sign_in(&flow.authorize_url, login).await;
    callback(app, &back, Some(&flow.cookie)).await
}

/// The callback's answer is a sign-in: a 303 to `next`, the refresh cookie, the flow
/// cookie cleared. Returns the person, by a refresh with that cookie.
async fn signed_in(app: &TestApp, response: Response, next: &str) -> app::api::Session {
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), next);
    let cleared = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| {
            v.to_str().unwrap().starts_with("__Secure-oidc_flow=;")
                && v.to_str().unwrap().contains("Max-Age=0")
        });
    assert!(cleared, "the flow cookie is cleared");
    assert_eq!(
        response.headers().get(header::CACHE_CONTROL).unwrap(),
        "no-store"
    );
    let cookie = refresh_cookie(response.headers()).expect("the refresh cookie");
    app.refresh(&cookie.value).await.session
}

fn refused(response: &Response, code: &str) {
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(response), format!("/login?error={code}"));
    assert!(refresh_cookie(response.headers()).is_none(), "no session");
}

fn email_of(login: &str) -> String {
    login.split_once(':').map_or(login, |(_, e)| e).to_string()
}

#[tokio::test]
async fn a_new_person_gets_a_verified_account_without_a_password() {
    let app = app(&["test"]).await;
    let login = unique_email();
    let session = signed_in(&app, sign_in_as(&app, "test", &login).await, "/account").await;
    assert_eq!(session.user.email, login);
    assert!(session.user.email_verified);
    assert_eq!(session.user.role, app::api::Role::User);
    // No password: a password login is refused like a wrong one, and a change says why.
    let response = app.login_raw(&login, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = app
        .bearer_post(
            "/api/auth/password/change",
            &session.access_token,
            json!({"current_password": PASSWORD, "new_password": "another good passphrase"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: app::api::ErrorBody = response.json().await.unwrap();
    assert_eq!(body.error.code, app::api::ErrorCode::PasswordNotSet);
}

#[tokio::test]
async fn the_same_subject_signs_into_the_same_account_and_next_is_kept() {
    let app = app(&["test"]).await;
    let login = unique_email();
    let first = signed_in(&app, sign_in_as(&app, "test", &login).await, "/account").await;
    let flow = start(&app, "test", "?next=/account/sessions").await;
    let back = provider().sign_in(&flow.authorize_url, &login).await;
    let second = signed_in(
        &app,
        callback(&app, &back, Some(&flow.cookie)).await,
        "/account/sessions",
    )
    .await;
    assert_eq!(first.user.id, second.user.id);
    // Another site as `next` is not followed.
    let flow = start(&app, "test", "?next=//evil.example/").await;
    let back = provider().sign_in(&flow.authorize_url, &login).await;
    signed_in(
        &app,
        callback(&app, &back, Some(&flow.cookie)).await,
        "/account",
    )
    .await;
}

#[tokio::test]
async fn every_signing_algorithm_and_a_public_client_work() {
    let app = app(&["es", "ed", "public"]).await;
    for id in ["es", "ed", "public"] {
        let login = unique_email();
        let session = signed_in(&app, sign_in_as(&app, id, &login).await, "/account").await;
        assert_eq!(session.user.email, login, "{id}");
    }
}

#[tokio::test]
async fn a_verified_provider_email_links_to_the_account_and_removes_an_unproven_password() {
    let app = app(&["test"]).await;
    let email = unique_email();
    // Someone registered this address with a password, never proving it.
    let squatter = app.register(&email).await;
    let login = format!("sub-{}:{email}", uuid::Uuid::new_v4());
    let session = signed_in(&app, sign_in_as(&app, "test", &login).await, "/account").await;
    assert_eq!(session.user.id, squatter.session.user.id);
    assert!(session.user.email_verified);
    // The password and its session are gone.
    assert_eq!(
        app.login_raw(&email, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let response = app.refresh_raw(&squatter.refresh_token()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.me_raw(&squatter.session.access_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_verified_account_keeps_its_password_when_an_identity_links_by_email() {
    let app = app(&["test"]).await;
    let email = unique_email();
    let owner = app.register(&email).await;
    server::db::users::mark_email_verified(app.db.pool(), &owner.session.user.id, 0)
        .await
        .unwrap();
    app.state.core.users.evict(&owner.session.user.id);
    let login = format!("sub-{}:{email}", uuid::Uuid::new_v4());
    let session = signed_in(&app, sign_in_as(&app, "test", &login).await, "/account").await;
    assert_eq!(session.user.id, owner.session.user.id);
    assert_eq!(
        app.login_raw(&email, PASSWORD).await.status(),
        StatusCode::OK
    );
    app.refresh(&owner.refresh_token()).await;
}

#[tokio::test]
async fn an_unverified_provider_email_neither_creates_nor_links() {
    let app = app(&["test"]).await;
    let email = unique_email();
    let login = format!("unverified:{email}");
    refused(
        &sign_in_as(&app, "test", &login).await,
        "oidc_email_unverified",
    );
    assert!(server::db::users::find_by_email(app.db.pool(), &email)
        .await
        .unwrap()
        .is_none());
    // Nor does it take over a registered account of that address.
    let owner = app.register(&email).await;
    refused(
        &sign_in_as(&app, "test", &login).await,
        "oidc_email_unverified",
    );
    app.refresh(&owner.refresh_token()).await;
    assert_eq!(
        app.login_raw(&email, PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_flow_is_refused_without_its_cookie_with_a_forged_state_when_expired_or_used_twice() {
    let app = app(&["test"]).await;
    let login = unique_email();
    // No flow cookie.
    let flow = start(&app, "test", "").await;
    let back = provider().sign_in(&flow.authorize_url, &login).await;
    refused(&callback(&app, &back, None).await, "oidc_state_invalid");
    // Another flow's cookie.
    let first = start(&app, "test", "").await;
    let second = start(&app, "test", "").await;
    let back = provider().sign_in(&first.authorize_url, &login).await;
    refused(
        &callback(&app, &back, Some(&second.cookie)).await,
        "oidc_state_invalid",
    );
    // A forged state with the right cookie.
    let flow = start(&app, "test", "").await;
    let back = provider().sign_in(&flow.authorize_url, &login).await;
    let forged = back.replace("state=", "state=forged");
    refused(
        &callback(&app, &forged, Some(&flow.cookie)).await,
        "oidc_state_invalid",
    );
    // Expired: more than ten minutes between start and callback.
    let flow = start(&app, "test", "").await;
    let back = provider().sign_in(&flow.authorize_url, &login).await;
    app.clock.advance(601);
    refused(
        &callback(&app, &back, Some(&flow.cookie)).await,
        "oidc_state_invalid",
    );
    // Used twice: the second time is refused, even with everything right.
    let flow = start(&app, "test", "").await;
    let back = provider().sign_in(&flow.authorize_url, &login).await;
    signed_in(
        &app,
        callback(&app, &back, Some(&flow.cookie)).await,
        "/account",
    )
    .await;
    refused(
        &callback(&app, &back, Some(&flow.cookie)).await,
        "oidc_state_invalid",
    );
}

#[tokio::test]
async fn a_replayed_code_is_refused() {
    let app = app(&["test"]).await;
    let login = unique_email();
    let flow = start(&app, "test", "").await;
    let back = provider().sign_in(&flow.authorize_url, &login).await;
    signed_in(
        &app,
        callback(&app, &back, Some(&flow.cookie)).await,
        "/account",
    )
    .await;
    // The used code, in a new flow of its own state and cookie.
    let code = url_param(&back, "code");
    let flow = start(&app, "test", "").await;
    let state = url_param(&flow.authorize_url, "state");
    let replay = format!(
        "{}/api/auth/oidc/test/callback?code={code}&state={state}",
        provider::PUBLIC_URL
    );
    refused(
        &callback(&app, &replay, Some(&flow.cookie)).await,
        "oidc_failed",
    );
}

/// The provider's ID token carries the nonce of the authorization request; a flow that
/// expects another one (as when an attacker's code and state are replayed into a victim's
/// flow) is refused, and nobody is signed in or created.
#[tokio::test]
async fn an_id_token_with_another_nonce_than_the_flows_is_refused() {
    let app = app(&["test"]).await;
    let login = unique_email();
    let flow = start(&app, "test", "").await;
    let state = url_param(&flow.authorize_url, "state");
    let back = provider().sign_in(&flow.authorize_url, &login).await;
    // Everything else as in a good sign-in: only the nonce the flow expects differs.
    let changed = sqlx::query("update oidc_flows set nonce = $1 where state = $2")
        .bind("a-nonce-the-provider-never-saw")
        .bind(&state)
        .execute(app.db.pool())
        .await
        .unwrap();
    assert_eq!(changed.rows_affected(), 1);
    refused(
        &callback(&app, &back, Some(&flow.cookie)).await,
        "oidc_failed",
    );
    assert!(server::db::users::find_by_email(app.db.pool(), &login)
        .await
        .unwrap()
        .is_none());
}

/// ID tokens the test provider really issued, handed to the check the callback makes: one
/// for our client with the flow's nonce passes; one for another client of the same
/// provider (a valid signature, the wrong `aud`), or with another nonce, is refused.
#[tokio::test]
async fn an_id_token_for_another_client_or_nonce_is_refused_by_the_callbacks_check() {
    let app = app(&["test"]).await;
    let ours = app.state.core.providers.get("test").unwrap().clone();
    let login = unique_email();
    let for_us = provider::id_token("test", &login, "nonce-1").await;
    let asserted = ours.check_id_token(&for_us, "nonce-1").await.unwrap();
    assert_eq!(asserted.subject, login);
    assert!(asserted.email_verified);
    assert!(ours.check_id_token(&for_us, "nonce-2").await.is_err());
    let for_other = provider::id_token("other", &login, "nonce-1").await;
    let failed = ours
        .check_id_token(&for_other, "nonce-1")
        .await
        .unwrap_err();
    assert!(
        format!("{failed}").to_lowercase().contains("audience"),
        "{failed}"
    );
}

#[tokio::test]
async fn cancelling_at_the_provider_says_so() {
    let app = app(&["test"]).await;
    let flow = start(&app, "test", "").await;
    let back = provider().cancel(&flow.authorize_url).await;
    refused(
        &callback(&app, &back, Some(&flow.cookie)).await,
        "oidc_cancelled",
    );
}

#[tokio::test]
async fn a_disabled_account_cannot_sign_in_with_a_provider() {
    let app = app(&["test"]).await;
    let login = unique_email();
    let session = signed_in(&app, sign_in_as(&app, "test", &login).await, "/account").await;
    server::db::users::set_active(app.db.pool(), &session.user.id, false, 0)
        .await
        .unwrap();
    app.state.core.users.evict(&session.user.id);
    refused(&sign_in_as(&app, "test", &login).await, "account_disabled");
}

#[tokio::test]
async fn unknown_providers_are_not_found_and_the_list_names_the_configured_ones() {
    let app = app(&["test", "ed"]).await;
    let response = app.get("/api/auth/oidc/nope/start").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let list: Vec<app::api::ProviderInfo> =
        app.get("/api/auth/providers").await.json().await.unwrap();
    assert_eq!(
        list,
        vec![
            app::api::ProviderInfo {
                id: "test".into(),
                name: "Test test".into()
            },
            app::api::ProviderInfo {
                id: "ed".into(),
                name: "Test ed".into()
            },
        ]
    );
}

#[tokio::test]
async fn a_provider_down_at_start_answers_503_while_passwords_work_and_is_used_once_back() {
    let port = provider::free_port();
    let app = app_for(provider::env_for(&provider::issuer_at(port), &["test"])).await;
    let response = app.get("/api/auth/oidc/test/start").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: app::api::ErrorBody = response.json().await.unwrap();
    assert_eq!(body.error.code, app::api::ErrorCode::ProviderUnavailable);
    let email = unique_email();
    app.register(&email).await;
    app.login(&email).await;
    // The provider comes up: discovery, retried in the background, finds it.
    let extra: ExtraProvider = provider::start_extra(port);
    wait_until_discovered(&app, "test").await;
    let login = unique_email();
    let flow = start(&app, "test", "").await;
    let back = extra.sign_in(&flow.authorize_url, &login).await;
    let session = signed_in(
        &app,
        callback(&app, &back, Some(&flow.cookie)).await,
        "/account",
    )
    .await;
    assert_eq!(session.user.email, email_of(&login));
}

/// A registered person whose address is verified (as linking requires).
async fn verified_person(app: &TestApp) -> crate::helpers::Signed {
    let person = app.register(&unique_email()).await;
    server::db::users::mark_email_verified(app.db.pool(), &person.session.user.id, 0)
        .await
        .unwrap();
    app.state.core.users.evict(&person.session.user.id);
    person
}

async fn link_url(app: &TestApp, access_token: &str) -> Response {
    app.bearer_post("/api/auth/oidc/test/link", access_token, json!({}))
        .await
}

/// The query of the start URL a link answer carries.
async fn ticket_query(response: Response) -> String {
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    body["url"]
        .as_str()
        .unwrap()
        .trim_start_matches("/api/auth/oidc/test/start")
        .to_string()
}

#[tokio::test]
async fn a_provider_that_hangs_during_the_callback_gives_oidc_failed_not_a_hung_request() {
    let extra = provider::start_extra(provider::free_port());
    let app = app_for(extra.env(&["test"])).await;
    wait_until_discovered(&app, "test").await;
    let flow = start(&app, "test", "").await;
    let back = extra.sign_in(&flow.authorize_url, &unique_email()).await;
    // Its token endpoint now takes the connection and never answers.
    extra.freeze();
    let response = callback(&app, &back, Some(&flow.cookie)).await;
    extra.thaw();
    // The server's own request limit (30 s) would have answered 503: the callback's bound
    // (10 s a call) came first, and the person reads what happened.
    refused(&response, "oidc_failed");
}

#[tokio::test]
async fn a_signed_in_person_links_an_identity_that_then_signs_them_in() {
    let app = app(&["test"]).await;
    let person = verified_person(&app).await;
    let query = ticket_query(link_url(&app, &person.session.access_token).await).await;
    // The provider's email need not match the account's.
    let login = format!("linked-{}:{}", uuid::Uuid::new_v4(), unique_email());
    let flow = start_with(&app, "test", &query, Some(&person.refresh_token())).await;
    let back = provider().sign_in(&flow.authorize_url, &login).await;
    let response = callback(&app, &back, Some(&flow.cookie)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/account");
    let session = signed_in(&app, sign_in_as(&app, "test", &login).await, "/account").await;
    assert_eq!(session.user.id, person.session.user.id);
    // The ticket was used up.
    let response = start_raw(&app, "test", &query, Some(&person.refresh_token())).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // Another account linking the same identity is told it is taken.
    let other = verified_person(&app).await;
    let query = ticket_query(link_url(&app, &other.session.access_token).await).await;
    let flow = start_with(&app, "test", &query, Some(&other.refresh_token())).await;
    let back = provider().sign_in(&flow.authorize_url, &login).await;
    let response = callback(&app, &back, Some(&flow.cookie)).await;
    assert_eq!(location(&response), "/account?error=identity_taken");
}

#[tokio::test]
async fn a_link_ticket_works_only_in_the_browser_signed_in_to_its_account() {
    let app = app(&["test"]).await;
    let attacker = verified_person(&app).await;
    let victim = verified_person(&app).await;
    // The attacker's ticket, opened in the victim's browser (or in one signed in to nothing):
    // refused, so the victim's identity can never be linked to the attacker's account.
    for refresh in [Some(victim.refresh_token()), None] {
        let query = ticket_query(link_url(&app, &attacker.session.access_token).await).await;
        let response = start_raw(&app, "test", &query, refresh.as_deref()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{refresh:?}");
        let body: app::api::ErrorBody = response.json().await.unwrap();
        assert_eq!(body.error.code, app::api::ErrorCode::OidcStateInvalid);
    }
}

/// Begins linking the identity `login` to `person`'s account from their browser: the
/// provider's redirect back, and the flow's cookie.
async fn link_at_provider(
    app: &TestApp,
    person: &crate::helpers::Signed,
    login: &str,
) -> (String, String) {
    let query = ticket_query(link_url(app, &person.session.access_token).await).await;
    let flow = start_with(app, "test", &query, Some(&person.refresh_token())).await;
    let back = provider().sign_in(&flow.authorize_url, login).await;
    (back, flow.cookie)
}

#[tokio::test]
async fn a_link_completes_only_while_the_session_that_began_it_is_live() {
    let app = app(&["test"]).await;
    // A fresh account, its address not yet proven, links as any other.
    let person = app.register(&unique_email()).await;
    let login = format!("linked-{}:{}", uuid::Uuid::new_v4(), unique_email());
    let (back, cookie) = link_at_provider(&app, &person, &login).await;
    let response = callback(&app, &back, Some(&cookie)).await;
    assert_eq!(location(&response), "/account");
    let session = signed_in(&app, sign_in_as(&app, "test", &login).await, "/account").await;
    assert_eq!(session.user.id, person.session.user.id);

    // A browser that signs out while at the provider links nothing when it comes back.
    let person = verified_person(&app).await;
    let login = format!("linked-{}:{}", uuid::Uuid::new_v4(), unique_email());
    let (back, cookie) = link_at_provider(&app, &person, &login).await;
    let response = app
        .cookie_post("/api/auth/logout", Some(&person.refresh_token()), &[])
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    link_refused(&app, &person, &back, &cookie, "oidc_state_invalid").await;
}

/// The link flow's callback comes back to the account page with `error`, and nothing is
/// linked to `person`.
async fn link_refused(
    app: &TestApp,
    person: &crate::helpers::Signed,
    back: &str,
    cookie: &str,
    error: &str,
) {
    let response = callback(app, back, Some(cookie)).await;
    assert_eq!(location(&response), format!("/account?error={error}"));
    let linked = server::db::identities::list_for_user(app.db.pool(), &person.session.user.id)
        .await
        .unwrap();
    assert!(linked.is_empty(), "{linked:?}");
}

#[tokio::test]
async fn identities_a_squatter_linked_go_when_the_owner_resets_the_password() {
    // The reset link goes to maildev, not to the log the provider's settings ask for.
    let env = provider().env(&["test"]);
    let vars: Vec<(&str, &str)> = env
        .iter()
        .filter(|(k, _)| k != "SMTP_URL")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let app = crate::helpers::spawn_app_with_mail(&vars).await;
    wait_until_discovered(&app, "test").await;
    // Someone registers the owner's address, never proves it, and links their own identity.
    let email = unique_email();
    let squatter = app.register(&email).await;
    let squatters_login = format!("squatter-{}:{}", uuid::Uuid::new_v4(), unique_email());
    let (back, cookie) = link_at_provider(&app, &squatter, &squatters_login).await;
    assert_eq!(
        location(&callback(&app, &back, Some(&cookie)).await),
        "/account"
    );
    // The owner resets the password from the mailed link, proving the address.
    crate::recovery::reset_by_mail(&app, &email, "the owner's own passphrase").await;
    // The squatter's identity no longer signs into the owner's account.
    let other = signed_in(
        &app,
        sign_in_as(&app, "test", &squatters_login).await,
        "/account",
    )
    .await;
    assert_ne!(other.user.id, squatter.session.user.id);
    let actions = crate::mfa::audit_actions(&app, &squatter.session.user.id).await;
    assert!(
        actions.iter().any(|a| a == "identity_unlinked"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn a_provider_that_does_not_vouch_for_the_email_links_nothing() {
    let app = app(&["test"]).await;
    let person = verified_person(&app).await;
    let login = format!("unverified:{}", unique_email());
    let (back, cookie) = link_at_provider(&app, &person, &login).await;
    link_refused(&app, &person, &back, &cookie, "oidc_email_unverified").await;
}

#[tokio::test]
async fn a_forged_callback_does_not_use_up_the_persons_flow() {
    let app = app(&["test"]).await;
    let login = unique_email();
    let flow = start(&app, "test", "").await;
    let back = provider().sign_in(&flow.authorize_url, &login).await;
    let forged = back.replace("state=", "state=forged");
    let response = callback(&app, &forged, Some(&flow.cookie)).await;
    refused(&response, "oidc_state_invalid");
    // Nor does its answer clear the browser's flow cookie.
    assert!(
        response.headers().get(header::SET_COOKIE).is_none(),
        "{:?}",
        response.headers()
    );
    signed_in(
        &app,
        callback(&app, &back, Some(&flow.cookie)).await,
        "/account",
    )
    .await;
}

#[tokio::test]
async fn identities_linked_to_an_unproven_account_go_when_the_address_is_proven_elsewhere() {
    let app = app(&["test", "ed"]).await;
    let email = unique_email();
    let squatter = app.register(&email).await;
    // An identity the squatter linked to the account (linking needs no proven address).
    let squatters_login = format!("squatter-{}:{}", uuid::Uuid::new_v4(), unique_email());
    server::db::identities::insert(
        app.db.pool(),
        server::db::identities::NewIdentity {
            provider: "ed",
            subject: &squatters_login,
            user_id: &squatter.session.user.id,
            email: "squatter@example.com",
            now: 0,
        },
    )
    .await
    .unwrap();
    // The owner proves the address through a provider: the squatter's identity is gone.
    let owner_login = format!("owner-{}:{email}", uuid::Uuid::new_v4());
    let session = signed_in(
        &app,
        sign_in_as(&app, "test", &owner_login).await,
        "/account",
    )
    .await;
    assert_eq!(session.user.id, squatter.session.user.id);
    let response = sign_in_as(&app, "ed", &squatters_login).await;
    let other = signed_in(&app, response, "/account").await;
    assert_ne!(
        other.user.id, session.user.id,
        "a new account, not the owner's"
    );
}

#[tokio::test]
async fn sign_ins_begun_are_limited_per_address() {
    let mut env = provider().env(&["test"]);
    env.push(("RATE_LIMIT_ENABLED".into(), "true".into()));
    let app = app_for(env).await;
    wait_until_discovered(&app, "test").await;
    let mut statuses = Vec::new();
    for _ in 0..61 {
        statuses.push(app.get("/api/auth/oidc/test/start").await.status());
    }
    // Sixty in 15 minutes, counting those `wait_until_discovered` began: then 429, and only 429.
    let first_refused = statuses
        .iter()
        .position(|s| *s == StatusCode::TOO_MANY_REQUESTS)
        .expect("refused at last");
    assert!((55..=60).contains(&first_refused), "{statuses:?}");
    assert!(statuses[..first_refused]
        .iter()
        .all(|s| *s == StatusCode::SEE_OTHER));
    assert!(statuses[first_refused..]
        .iter()
        .all(|s| *s == StatusCode::TOO_MANY_REQUESTS));
}

async fn bearer(app: &TestApp, method: reqwest::Method, path: &str, token: &str) -> Response {
    app.client
        .request(method, app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn sign_in_methods_are_listed_sessions_show_theirs_and_the_last_one_stays() {
    let app = app(&["test", "ed"]).await;
    let login = unique_email();
    let session = signed_in(&app, sign_in_as(&app, "test", &login).await, "/account").await;
    let token = session.access_token.clone();
    let methods: app::api::SignInMethods =
        bearer(&app, reqwest::Method::GET, "/api/me/identities", &token)
            .await
            .json()
            .await
            .unwrap();
    assert!(!methods.password_set);
    assert_eq!(methods.identities.len(), 1);
    assert_eq!(methods.identities[0].provider, "test");
    assert_eq!(methods.identities[0].email, login);
    let sessions: Vec<app::api::SessionInfo> =
        bearer(&app, reqwest::Method::GET, "/api/sessions", &token)
            .await
            .json()
            .await
            .unwrap();
    assert!(sessions.iter().all(|s| s.method == "test"), "{sessions:?}");
    // The only way in stays.
    let response = bearer(
        &app,
        reqwest::Method::DELETE,
        "/api/me/identities/test",
        &token,
    )
    .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let body: app::api::ErrorBody = response.json().await.unwrap();
    assert_eq!(body.error.code, app::api::ErrorCode::LastSignInMethod);
    let response = bearer(
        &app,
        reqwest::Method::DELETE,
        "/api/me/identities/ed",
        &token,
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // With a second provider linked, the first may go; it then signs nobody into this account.
    let cookie = {
        let response = sign_in_as(&app, "test", &login).await;
        refresh_cookie(response.headers()).unwrap().value
    };
    let query = ticket_query(link_url(&app, &token).await).await;
    let flow = start_with(&app, "ed", &query, Some(&cookie)).await;
    let ed_login = format!("ed-{}:{}", uuid::Uuid::new_v4(), unique_email());
    let back = provider().sign_in(&flow.authorize_url, &ed_login).await;
    let response = callback(&app, &back, Some(&flow.cookie)).await;
    assert_eq!(location(&response), "/account");
    let response = bearer(
        &app,
        reqwest::Method::DELETE,
        "/api/me/identities/test",
        &token,
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let methods: app::api::SignInMethods =
        bearer(&app, reqwest::Method::GET, "/api/me/identities", &token)
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(
        methods
            .identities
            .iter()
            .map(|i| i.provider.as_str())
            .collect::<Vec<_>>(),
        ["ed"]
    );
    // Signing in with it again links it again, by its verified email (the second rule).
    let again = signed_in(&app, sign_in_as(&app, "test", &login).await, "/account").await;
    assert_eq!(again.user.id, session.user.id);
    // Each link and the unlink are in the audit log, beside each sign-in.
    let actions = crate::mfa::audit_actions(&app, &session.user.id).await;
    let count = |action: &str| actions.iter().filter(|a| *a == action).count();
    // Linked: "test" when the account was made, "ed" from the account page, "test" again.
    assert_eq!(count("identity_linked"), 3, "{actions:?}");
    assert_eq!(count("identity_unlinked"), 1, "{actions:?}");
    assert_eq!(count("oidc_login"), 3, "{actions:?}");
}

// Races that only PostgreSQL shows: its transactions run side by side, SQLite's one at a time.

/// Waits until some backend of the test's database waits for a lock another holds.
async fn until_one_waits_for_a_lock(app: &TestApp) {
    until_waiting_for_locks(app, 1).await;
}

/// Returns once `count` sessions of this database wait for a lock (PostgreSQL only).
async fn until_waiting_for_locks(app: &TestApp, count: i64) {
    let started = Instant::now();
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity \
             where datname = current_database() and wait_event_type = 'Lock'",
        )
        .fetch_one(app.db.pool())
        .await
        .unwrap();
        if waiting >= count {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{waiting} wait, not {count}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A squatter's linked identity signing in while the owner proves the address: the proof
/// (played here by the statements every proof makes, in the order it makes them: the
/// person's row held, the identities deleted, the sessions ended) is committed only after
/// the sign-in would have committed. The sign-in waits for the person's row and then finds
/// the identity gone: no session of the owner's account is left to the squatter.
#[tokio::test]
async fn a_squatters_identity_signing_in_while_the_owner_proves_the_address_gets_no_session() {
    if !crate::helpers::on_postgres() {
        return; // SQLite writes one transaction at a time: no interleaving to test.
    }
    let app = app(&["test"]).await;
    let email = unique_email();
    let squatter = app.register(&email).await;
    let user_id = squatter.session.user.id.clone();
    let squatters_login = format!("squatter-{}:{}", uuid::Uuid::new_v4(), unique_email());
    let (back, cookie) = link_at_provider(&app, &squatter, &squatters_login).await;
    assert_eq!(
        location(&callback(&app, &back, Some(&cookie)).await),
        "/account"
    );
    let flow = start(&app, "test", "").await;
    let back = provider()
        .sign_in(&flow.authorize_url, &squatters_login)
        .await;

    let mut proof = app.db.begin_write().await.unwrap();
    sqlx::query("update users set updated_at = updated_at where id = $1")
        .bind(&user_id)
        .execute(&mut *proof)
        .await
        .unwrap();
    sqlx::query("delete from identities where user_id = $1")
        .bind(&user_id)
        .execute(&mut *proof)
        .await
        .unwrap();
    sqlx::query("update refresh_families set revoked_at = 1 where user_id = $1")
        .bind(&user_id)
        .execute(&mut *proof)
        .await
        .unwrap();
    let (answer, ()) = tokio::join!(callback(&app, &back, Some(&flow.cookie)), async {
        // Committed once the sign-in has gone as far as it can without it.
        let waited = tokio::time::timeout(Duration::from_secs(3), until_one_waits_for_a_lock(&app));
        let _ = waited.await;
        proof.commit().await.unwrap();
    });
    let signed = signed_in(&app, answer, "/account").await;
    assert_ne!(
        signed.user.id, user_id,
        "the squatter is not in the owner's account"
    );
    let live = server::db::sessions::live_ids_for_user(app.db.pool(), &user_id, i64::MAX / 2)
        .await
        .unwrap();
    assert!(live.is_empty(), "{live:?}");
}

/// A squatter's second step (a recovery code) sent while the owner proves the address
/// through a provider: the proof is held where it removes the squatter's second factor (a
/// lock on that row), holding the person's row. The second step holds that row first, so it
/// waits for the proof, and then finds its way in gone; had it come first, the proof would
/// end the session it opened. Either way no session is left to the squatter.
#[tokio::test]
async fn a_squatters_second_step_while_the_owner_proves_the_address_leaves_no_session() {
    if !crate::helpers::on_postgres() {
        return; // SQLite writes one transaction at a time: no interleaving to test.
    }
    let app = app(&["test"]).await;
    let squatter = crate::mfa::enrolled(&app).await;
    let mfa_token = crate::mfa::first_step(&app, &squatter.email).await;
    let flow = start(&app, "test", "").await;
    let owner_login = format!("owner-{}:{}", uuid::Uuid::new_v4(), squatter.email);
    let back = provider().sign_in(&flow.authorize_url, &owner_login).await;

    let mut hold = app.db.begin_write().await.unwrap();
    sqlx::query("select 1 from totp_secrets where user_id = (select id from users where email = $1) for update")
        .bind(&squatter.email)
        .execute(&mut *hold)
        .await
        .unwrap();
    let (owner, second_step) = tokio::join!(callback(&app, &back, Some(&flow.cookie)), async {
        // The owner's proof now waits on the squatter's second factor...
        until_waiting_for_locks(&app, 1).await;
        // ...and the squatter's second step, sent now, waits for the person's row.
        let (answer, ()) = tokio::join!(
            crate::mfa::verify(
                &app,
                json!({"mfa_token": mfa_token, "recovery_code": squatter.recovery_codes[0]}),
            ),
            async {
                until_waiting_for_locks(&app, 2).await;
                hold.commit().await.unwrap();
            }
        );
        answer
    });
    signed_in(&app, owner, "/account").await;
    match refresh_cookie(second_step.headers()) {
        None => assert_eq!(second_step.status(), StatusCode::UNAUTHORIZED),
        Some(cookie) => assert_eq!(
            app.refresh_raw(&cookie.value).await.status(),
            StatusCode::UNAUTHORIZED,
            "the squatter's session outlived the owner's proof"
        ),
    }
}

/// Two "Disconnect"s at once, of the two providers of a person without a password: one
/// goes, the other is refused as the last way in, and one stays.
#[tokio::test]
async fn two_disconnects_at_once_leave_one_way_in() {
    let app = app(&["test", "ed"]).await;
    for round in 0..8 {
        let login = unique_email();
        let session = signed_in(&app, sign_in_as(&app, "test", &login).await, "/account").await;
        // The second identity is written directly: the race is in the unlinks, not the linking.
        identities::insert(
            app.db.pool(),
            NewIdentity {
                provider: "ed",
                subject: &uuid::Uuid::new_v4().to_string(),
                user_id: &session.user.id,
                email: &login,
                now: app.clock.now_unix(),
            },
        )
        .await
        .unwrap();
        let token = &session.access_token;
        let delete = reqwest::Method::DELETE;
        let (a, b) = tokio::join!(
            bearer(&app, delete.clone(), "/api/me/identities/test", token),
            bearer(&app, delete.clone(), "/api/me/identities/ed", token),
        );
        let mut statuses = [a.status(), b.status()];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::NO_CONTENT, StatusCode::CONFLICT],
            "round {round}"
        );
        let left = identities::list_for_user(app.db.pool(), &session.user.id)
            .await
            .unwrap();
        assert_eq!(left.len(), 1, "round {round}: {left:?}");
    }
}

/// A password login whose password a provider's sign-in removes while the login checks it
/// (the address proven to be someone else's): the login opens no session that outlives the
/// removal. The provider's callback is timed to land inside the login's password check.
#[tokio::test]
async fn a_password_login_racing_its_removal_by_a_provider_opens_no_session() {
    let app = app(&["test"]).await;
    // How long a login's password check and a callback take here, to time the race.
    let probe = unique_email();
    app.register(&probe).await;
    let started = Instant::now();
    app.login(&probe).await;
    let check = started.elapsed();
    let (answer, callback_time) = sign_in_timed(&app, &unique_email()).await;
    signed_in(&app, answer, "/account").await;
    const ROUNDS: u32 = 6;
    for round in 0..ROUNDS {
        let email = unique_email();
        app.register(&email).await;
        let flow = start(&app, "test", "").await;
        let login = format!("sub-{}:{email}", uuid::Uuid::new_v4());
        let back = provider().sign_in(&flow.authorize_url, &login).await;
        // The callback's write should land after the login read the password and before its
        // own write: the login starts `lead` after the callback (before it, if negative).
        let lead = callback_time.as_secs_f64()
            - check.as_secs_f64() * f64::from(round + 1) / f64::from(ROUNDS + 1);
        let (callback_first, login_first) = if lead >= 0.0 {
            (Duration::ZERO, Duration::from_secs_f64(lead))
        } else {
            (Duration::from_secs_f64(-lead), Duration::ZERO)
        };
        let (answer, attempt) = tokio::join!(
            async {
                tokio::time::sleep(callback_first).await;
                callback(&app, &back, Some(&flow.cookie)).await
            },
            async {
                tokio::time::sleep(login_first).await;
                app.login_raw(&email, PASSWORD).await
            },
        );
        assert_eq!(location(&answer), "/account", "round {round}");
        let status = attempt.status();
        if status == StatusCode::OK {
            // Logged in before the removal: that session ended with it.
            let cookie = refresh_cookie(attempt.headers()).expect("a refresh cookie");
            assert_eq!(
                app.refresh_raw(&cookie.value).await.status(),
                StatusCode::UNAUTHORIZED,
                "round {round}: a session of the removed password is still alive"
            );
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "round {round}");
        }
        assert_eq!(
            app.login_raw(&email, PASSWORD).await.status(),
            StatusCode::UNAUTHORIZED,
            "round {round}"
        );
    }
}

/// A sign-in at the test provider, and how long its callback took.
async fn sign_in_timed(app: &TestApp, login: &str) -> (Response, Duration) {
    let flow = start(app, "test", "").await;
    let back = provider().sign_in(&flow.authorize_url, login).await;
    let started = Instant::now();
    let answer = callback(app, &back, Some(&flow.cookie)).await;
    (answer, started.elapsed())
}

#[tokio::test]
async fn a_person_with_a_second_factor_is_asked_for_it_after_the_provider() {
    use crate::mfa::{call, code, next_step, secret_of, setup, verify};
    let app = app(&["test"]).await;
    let login = unique_email();
    let first = signed_in(&app, sign_in_as(&app, "test", &login).await, "/account").await;
    let secret = secret_of(&setup(&app, &first.access_token).await);
    let response = call(
        &app,
        "POST",
        "/api/me/mfa/totp/confirm",
        &first.access_token,
        json!({"code": code(&app, &secret)}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    next_step(&app);

    let flow = start(&app, "test", "?next=/account/sessions").await;
    let back = provider().sign_in(&flow.authorize_url, &login).await;
    let response = callback(&app, &back, Some(&flow.cookie)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        refresh_cookie(response.headers()).is_none(),
        "no session yet"
    );
    // The token rides in the fragment, which no request carries.
    let to = location(&response);
    let (page, mfa_token) = to.split_once("#mfa=").expect("a token in the fragment");
    assert_eq!(page, "/login?next=%2Faccount%2Fsessions");
    let response = verify(
        &app,
        json!({"mfa_token": mfa_token, "code": code(&app, &secret)}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let session = crate::helpers::signed(response).await;
    assert_eq!(session.session.user.id, first.user.id);
    // Audited as the provider's sign-in it is.
    let actions = crate::mfa::audit_actions(&app, &first.user.id).await;
    assert_eq!(
        actions.iter().filter(|a| *a == "oidc_login").count(),
        2,
        "{actions:?}"
    );
    // The session began at the provider.
    assert_eq!(
        app.current_session(&session.session.access_token)
            .await
            .method,
        "test"
    );
}

#[tokio::test]
async fn proving_an_unproven_address_removes_the_second_factor_and_passkeys_set_up_before() {
    let app = app(&["test"]).await;
    // Someone registered the owner's address, never proved it, and set up a second factor
    // and a passkey.
    let squatter = crate::mfa::enrolled(&app).await;
    let user = server::db::users::find_by_email(app.db.pool(), &squatter.email)
        .await
        .unwrap()
        .unwrap();
    let session = app.current_session(&squatter.access_token).await.id;
    server::db::passkeys::insert(
        app.db.pool(),
        server::db::passkeys::NewPasskey {
            id: "11111111-1111-4111-8111-111111111111",
            user_id: &user.id,
            session_id: &session,
            credential_id: "AQIDBA",
            name: "Squatter's key",
            passkey: "{}",
            now: 0,
        },
    )
    .await
    .unwrap();
    // The owner signs in through a provider that verified the address: straight in, no code.
    let login = format!("sub-{}:{}", uuid::Uuid::new_v4(), squatter.email);
    let session = signed_in(&app, sign_in_as(&app, "test", &login).await, "/account").await;
    assert_eq!(session.user.id, user.id);
    let status = crate::mfa::status(&app, &session.access_token).await;
    assert!(!status.totp_enabled);
    let (passkeys,): (i64,) = sqlx::query_as("select count(*) from passkeys")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(passkeys, 0);
}

/// An admin disabling a person while a provider's sign-in links to their verified account
/// by email: whichever commits first, no session of the disabled person is left. On
/// PostgreSQL the two transactions overlap: the disabling is held open here meanwhile.
#[tokio::test]
async fn a_provider_sign_in_racing_a_disabling_leaves_no_session() {
    let app = app(&["test"]).await;
    let email = unique_email();
    let owner = app.register(&email).await;
    let id = owner.session.user.id.clone();
    server::db::users::mark_email_verified(app.db.pool(), &id, 0)
        .await
        .unwrap();
    app.state.core.users.evict(&id);
    let flow = start(&app, "test", "").await;
    let login = format!("sub-{}:{email}", uuid::Uuid::new_v4());
    let back = provider().sign_in(&flow.authorize_url, &login).await;
    // The disabling's statements, not committed yet.
    let mut disabling = app.db.begin_write().await.unwrap();
    let now = app.clock.now_unix();
    server::db::users::set_active(&mut *disabling, &id, false, now)
        .await
        .unwrap();
    server::db::sessions::revoke_all_of_user(&mut *disabling, &id, now, "disabled by admin")
        .await
        .unwrap();
    let (answer, ()) = tokio::join!(callback(&app, &back, Some(&flow.cookie)), async {
        // The callback reaches its transaction meanwhile (on SQLite it waits for the write
        // turn this transaction holds).
        tokio::time::sleep(Duration::from_millis(500)).await;
        disabling.commit().await.unwrap();
    });
    let live: i64 = sqlx::query_scalar(
        "select count(*) from refresh_families where user_id = $1 and revoked_at is null",
    )
    .bind(&id)
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(
        live,
        0,
        "a session of the disabled person is alive (to {})",
        location(&answer)
    );
}
