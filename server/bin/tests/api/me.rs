//! `GET /api/me` and the strictness of access-token validation, forged tokens included.

use crate::helpers::{assert_error, spawn_app, unique_email, TestApp};
use app::api::{ErrorCode, User};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use ed25519_dalek::{
    pkcs8::{spki::der::pem::LineEnding, DecodePrivateKey, EncodePrivateKey, EncodePublicKey},
    SigningKey,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};

const INVALID: &str = r#"Bearer realm="api", error="invalid_token""#;

async fn assert_rejected(app: &TestApp, token: &str, code: ErrorCode, case: &str) {
    let response = app.me_raw(token).await;
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap()),
        Some(INVALID),
        "{case}"
    );
    let body = response.text().await.unwrap();
    assert!(
        body.contains(&format!("\"code\":\"{}\"", code.as_str())),
        "{case}: {body}"
    );
}

fn parts(token: &str) -> (Value, Value, String) {
    let mut it = token.split('.');
    let header =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap()).unwrap();
    let claims =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap()).unwrap();
    (header, claims, it.next().unwrap().to_string())
}

fn b64json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn real_key(app: &TestApp) -> SigningKey {
    SigningKey::from_pkcs8_pem(&std::fs::read_to_string(&app.key_file).unwrap()).unwrap()
}

/// Signs `claims` with `key` under a header built from `header`.
fn sign(key: &SigningKey, header: Header, claims: &Value) -> String {
    let der = key.to_pkcs8_der().unwrap();
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der.as_bytes())).unwrap()
}

fn eddsa_header(kid: &str, typ: &str) -> Header {
    let mut h = Header::new(Algorithm::EdDSA);
    h.typ = Some(typ.into());
    h.kid = Some(kid.into());
    h
}

#[tokio::test]
async fn me_returns_the_person() {
    let app = spawn_app().await;
    let signed = app.register(&unique_email()).await;
    let response = app.me_raw(&signed.session.access_token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let user: User = response.json().await.unwrap();
    assert_eq!(user, signed.session.user);
}

#[tokio::test]
async fn a_missing_token_is_401_without_an_error_parameter() {
    let app = spawn_app().await;
    for auth in [None, Some("Basic YWRhOnB3"), Some("Bearer")] {
        let mut request = app.client.get(app.url("/api/me"));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.headers()["www-authenticate"],
            r#"Bearer realm="api""#,
            "{auth:?}"
        );
        assert_error(response, StatusCode::UNAUTHORIZED, ErrorCode::TokenMissing).await;
    }
}

#[tokio::test]
async fn an_expired_token_is_token_expired_after_five_seconds_of_leeway() {
    let app = spawn_app().await;
    let signed = app.register(&unique_email()).await;
    app.clock.advance(904);
    assert_eq!(
        app.me_raw(&signed.session.access_token).await.status(),
        StatusCode::OK
    );
    app.clock.advance(1);
    assert_rejected(
        &app,
        &signed.session.access_token,
        ErrorCode::TokenExpired,
        "expired",
    )
    .await;
    let response = app.me_raw(&signed.session.access_token).await;
    assert_error(response, StatusCode::UNAUTHORIZED, ErrorCode::TokenExpired).await;
}

#[tokio::test]
async fn forged_and_malformed_tokens_are_token_invalid() {
    let app = spawn_app().await;
    let signed = app.register(&unique_email()).await;
    let good = signed.session.access_token.clone();
    let (header, claims, signature) = parts(&good);
    let kid = header["kid"].as_str().unwrap().to_string();
    let key = real_key(&app);
    let attacker = SigningKey::from_bytes(&[42u8; 32]);
    let [h, p, _] = good.split('.').collect::<Vec<_>>()[..] else {
        panic!()
    };

    let mut cases: Vec<(String, String)> = Vec::new();
    for alg in ["none", "None", "NONE"] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": kid});
        cases.push((format!("alg {alg}"), format!("{}.{}.", b64json(&header), p)));
    }
    let mut tampered = claims.clone();
    tampered["role"] = json!("admin");
    cases.push((
        "tampered payload".into(),
        format!("{h}.{}.{signature}", b64json(&tampered)),
    ));
    cases.push(("empty signature".into(), format!("{h}.{p}.")));
    cases.push(("two parts".into(), format!("{h}.{p}")));
    cases.push(("garbage".into(), "not.a.jwt".into()));

    // HS256 "signed" with the public key, the classic algorithm confusion.
    let public_pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    for secret in [
        public_pem.as_bytes().to_vec(),
        key.verifying_key().to_bytes().to_vec(),
    ] {
        let mut hs = Header::new(Algorithm::HS256);
        hs.typ = Some("at+jwt".into());
        hs.kid = Some(kid.clone());
        let token = jsonwebtoken::encode(&hs, &claims, &EncodingKey::from_secret(&secret)).unwrap();
        cases.push(("HS256 with the public key".into(), token));
    }

    for typ in ["JWT", "AT+JWT", "application/at+jwt"] {
        cases.push((
            format!("typ {typ}"),
            sign(&key, eddsa_header(&kid, typ), &claims),
        ));
    }
    let mut no_typ = eddsa_header(&kid, "x");
    no_typ.typ = None;
    cases.push(("no typ".into(), sign(&key, no_typ, &claims)));

    for (field, value) in [
        ("iss", "https://evil.example"),
        ("aud", "https://evil.example"),
    ] {
        let mut c = claims.clone();
        c[field] = json!(value);
        cases.push((
            format!("wrong {field}"),
            sign(&key, eddsa_header(&kid, "at+jwt"), &c),
        ));
    }
    let mut aud_list = claims.clone();
    aud_list["aud"] = json!([claims["aud"].clone(), "https://evil.example"]);
    cases.push((
        "aud as a list".into(),
        sign(&key, eddsa_header(&kid, "at+jwt"), &aud_list),
    ));

    for missing in [
        "iss", "aud", "sub", "sid", "role", "iat", "nbf", "exp", "jti",
    ] {
        let mut c = claims.clone();
        c.as_object_mut().unwrap().remove(missing);
        cases.push((
            format!("missing {missing}"),
            sign(&key, eddsa_header(&kid, "at+jwt"), &c),
        ));
    }

    let mut future = claims.clone();
    future["nbf"] = json!(claims["iat"].as_i64().unwrap() + 60);
    cases.push((
        "nbf in the future".into(),
        sign(&key, eddsa_header(&kid, "at+jwt"), &future),
    ));
    let mut bad_role = claims.clone();
    bad_role["role"] = json!("superuser");
    cases.push((
        "unknown role".into(),
        sign(&key, eddsa_header(&kid, "at+jwt"), &bad_role),
    ));

    for injected in ["../../../../dev/null", "' or '1'='1", ""] {
        cases.push((
            format!("kid {injected:?}"),
            sign(&key, eddsa_header(injected, "at+jwt"), &claims),
        ));
    }
    let mut no_kid = eddsa_header(&kid, "at+jwt");
    no_kid.kid = None;
    cases.push(("no kid".into(), sign(&key, no_kid, &claims)));
    cases.push((
        "attacker key, our kid".into(),
        sign(&attacker, eddsa_header(&kid, "at+jwt"), &claims),
    ));

    for signer in [&attacker, &key] {
        let mut jku = eddsa_header(&kid, "at+jwt");
        jku.jku = Some("https://evil.example/jwks.json".into());
        cases.push(("jku".into(), sign(signer, jku, &claims)));
        let mut x5u = eddsa_header(&kid, "at+jwt");
        x5u.x5u = Some("https://evil.example/cert.pem".into());
        cases.push(("x5u".into(), sign(signer, x5u, &claims)));
    }

    cases.push(("a refresh token".into(), signed.refresh_token()));

    for (case, token) in &cases {
        assert_rejected(&app, token, ErrorCode::TokenInvalid, case).await;
    }
    // The genuine token still works, so every refusal above was about the forgery.
    assert_eq!(app.me_raw(&good).await.status(), StatusCode::OK);
    // And a token we sign ourselves with the real key and claims is accepted: the test
    // harness's signing is faithful.
    assert_eq!(
        app.me_raw(&sign(&key, eddsa_header(&kid, "at+jwt"), &claims))
            .await
            .status(),
        StatusCode::OK
    );
}
