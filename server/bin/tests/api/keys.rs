//! Published keys and rotation: the JWKS a resource server verifies our tokens with,
//! `server keys rotate` and `list`, and instances sharing one database.

use crate::helpers::{assert_error, spawn_app, spawn_app_with, unique_email, TestApp};
use app::api::ErrorCode;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use ed25519_dalek::{
    pkcs8::{DecodePrivateKey, EncodePrivateKey},
    SigningKey,
};
use jsonwebtoken::{jwk::JwkSet, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest::{header, StatusCode};
use serde_json::{json, Value};
use server::{
    auth::key_set::KeyState,
    cli,
    db::{signing_keys, Db},
    service::keys,
};
use std::time::{Duration, Instant};

async fn jwks(app: &TestApp) -> JwkSet {
    let response = app.get("/.well-known/jwks.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers().get(header::CACHE_CONTROL).unwrap(),
        "public, max-age=300"
    );
    response.json().await.unwrap()
}

fn kids(set: &JwkSet) -> Vec<String> {
    let mut kids: Vec<String> = set
        .keys
        .iter()
        .map(|k| k.common.key_id.clone().unwrap())
        .collect();
    kids.sort();
    kids
}

fn sorted(kids: &[&str]) -> Vec<String> {
    let mut kids: Vec<String> = kids.iter().map(|k| k.to_string()).collect();
    kids.sort();
    kids
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// Waits (2 s at most, as every instance promises) until `app` publishes exactly `want`.
async fn publishes_within_two_seconds(app: &TestApp, want: &[&str]) {
    let started = Instant::now();
    loop {
        let have = kids(&jwks(app).await);
        if have == sorted(want) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "still {have:?} after 2 s, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn rotate(app: &TestApp) -> String {
    cli::keys_rotate(&app.state.settings, app.clock.now_unix())
        .await
        .unwrap()
        .kid
}

async fn states(app: &TestApp) -> Vec<(String, KeyState)> {
    cli::keys_list(&app.state.settings, app.clock.now_unix())
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.state))
        .collect()
}

#[tokio::test]
async fn a_resource_server_verifies_our_tokens_with_the_jwks_alone() {
    let app = spawn_app().await;
    let signed = app.register(&unique_email()).await;
    let raw: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let members: Vec<&String> = raw["keys"][0].as_object().unwrap().keys().collect();
    assert_eq!(members, ["alg", "crv", "kid", "kty", "use", "x"]);
    // What a resource server of someone else's does: find the token's key, check it.
    let set = jwks(&app).await;
    let token = &signed.session.access_token;
    let jwk = set
        .find(&kid_of(token))
        .expect("the token's key is published");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[&app.state.settings.auth.issuer]);
    validation.set_audience(&[&app.state.settings.auth.audience]);
    let claims =
        jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .unwrap()
            .claims;
    assert_eq!(claims["sub"], signed.session.user.id.as_str());
    // The database holds the key, its private half sealed.
    let rows = signing_keys::list(app.db.pool()).await.unwrap();
    assert_eq!(rows.len(), 1);
    let key = SigningKey::from_pkcs8_pem(&std::fs::read_to_string(&app.key_file).unwrap()).unwrap();
    assert_eq!(rows[0].kid, kid_of(token));
    assert_eq!(
        rows[0].public_key,
        URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes())
    );
    for encoded in [
        URL_SAFE_NO_PAD.encode(key.as_bytes()),
        base64::engine::general_purpose::STANDARD.encode(key.as_bytes()),
    ] {
        assert!(!rows[0].sealed_private_key.contains(&encoded[..20]));
    }
}

/// A token signed by `key`, for the session of `like`, valid for a day from `now`.
fn forged(key: &SigningKey, like: &str, now: i64) -> String {
    let claims: Value = jsonwebtoken::dangerous::insecure_decode::<Value>(like)
        .unwrap()
        .claims;
    let mut claims = claims;
    claims["iat"] = json!(now);
    claims["nbf"] = json!(now);
    claims["exp"] = json!(now + 86_400);
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.kid = Some(kid_of(like));
    let der = key.to_pkcs8_der().unwrap();
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(der.as_bytes())).unwrap()
}

#[tokio::test]
async fn a_rotated_key_is_published_at_once_signs_after_the_delay_and_its_predecessor_retires() {
    let app = spawn_app_with(&[("AUTH_KEY_PUBLISH_SECS", "600")]).await;
    let email = unique_email();
    let before = app.register(&email).await;
    let old = kid_of(&before.session.access_token);
    let new = rotate(&app).await;
    assert_ne!(new, old);
    assert_eq!(
        states(&app).await,
        [
            (old.clone(), KeyState::Current),
            (new.clone(), KeyState::Next)
        ]
    );
    publishes_within_two_seconds(&app, &[&old, &new]).await;
    // Published, not signing yet.
    assert_eq!(kid_of(&app.login(&email).await.session.access_token), old);
    app.clock.advance(600);
    let after = app.login(&email).await;
    assert_eq!(kid_of(&after.session.access_token), new);
    assert_eq!(
        app.me_raw(&before.session.access_token).await.status(),
        StatusCode::OK,
        "tokens of the key before still verify"
    );
    assert_eq!(
        states(&app).await,
        [
            (old.clone(), KeyState::Retiring),
            (new.clone(), KeyState::Current)
        ]
    );
    // Until every token the old key signed has expired (15 minutes, and 5 s of leeway).
    let key = SigningKey::from_pkcs8_pem(&std::fs::read_to_string(&app.key_file).unwrap()).unwrap();
    let long_lived = forged(&key, &before.session.access_token, app.clock.now_unix());
    assert_eq!(app.me_raw(&long_lived).await.status(), StatusCode::OK);
    app.clock.advance(904);
    assert_eq!(kids(&jwks(&app).await), sorted(&[&old, &new]));
    app.clock.advance(1);
    assert_eq!(kids(&jwks(&app).await), sorted(&[&new]));
    assert_eq!(
        states(&app).await,
        [
            (old.clone(), KeyState::Retired),
            (new.clone(), KeyState::Current)
        ]
    );
    assert_error(
        app.me_raw(&long_lived).await,
        StatusCode::UNAUTHORIZED,
        ErrorCode::TokenInvalid,
    )
    .await;
    assert_eq!(
        app.me_raw(&app.login(&email).await.session.access_token)
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn instances_on_one_database_publish_the_same_keys_and_learn_a_rotation_within_two_seconds() {
    let publish_now = [("AUTH_KEY_PUBLISH_SECS", "0")];
    let a = spawn_app_with(&publish_now).await;
    let b = a.another_instance(&publish_now).await;
    assert_eq!(kids(&jwks(&a).await), kids(&jwks(&b).await));
    let email = unique_email();
    let signed = a.register(&email).await;
    assert_eq!(
        b.me_raw(&signed.session.access_token).await.status(),
        StatusCode::OK
    );
    let old = kid_of(&signed.session.access_token);
    // Rotated by the command line, signing at once: both instances take it up.
    let new = rotate(&a).await;
    publishes_within_two_seconds(&b, &[&old, &new]).await;
    publishes_within_two_seconds(&a, &[&old, &new]).await;
    let from_b = b.login(&email).await.session.access_token;
    assert_eq!(kid_of(&from_b), new);
    assert_eq!(a.me_raw(&from_b).await.status(), StatusCode::OK);
    assert_eq!(
        b.me_raw(&signed.session.access_token).await.status(),
        StatusCode::OK
    );
}

#[test]
fn an_instance_whose_secret_does_not_open_the_keys_does_not_start() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(spawn_app());
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .current_dir(dir.path())
        .env("DATABASE_URL", &app.database_url)
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "error")
        .output()
        .expect("run server");
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("same AUTH_SECRET_FILE"), "{said}");
    drop(app);
}

#[tokio::test]
async fn two_instances_starting_at_once_on_an_empty_database_import_one_key() {
    if !crate::helpers::on_postgres() {
        // SQLite serves one instance (two migrating one new file at once collide).
        eprintln!("several instances share PostgreSQL only: checked in the PostgreSQL run");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sealer = server::auth::keys::Sealer::new(&[7u8; 32]);
    for round in 0..8 {
        let url = crate::helpers::fresh_database(&dir).await;
        let (a, b) = (
            Db::connect(&url).await.unwrap(),
            Db::connect(&url).await.unwrap(),
        );
        a.migrate().await.unwrap();
        // Each instance its own key file, as the defaults give.
        let (file_a, file_b) = (
            dir.path().join(format!("a-{round}.pem")),
            dir.path().join(format!("b-{round}.pem")),
        );
        let (ra, rb) = tokio::join!(
            keys::import_first(&a, &sealer, &file_a, 0),
            keys::import_first(&b, &sealer, &file_b, 0),
        );
        ra.unwrap();
        rb.unwrap();
        let imported = signing_keys::list(a.pool()).await.unwrap();
        assert_eq!(imported.len(), 1, "round {round}: {imported:?}");
        a.close().await;
        b.close().await;
    }
}
