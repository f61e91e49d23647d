use crate::helpers::{assert_error, signed, spawn_app, spawn_app_with, unique_email, PASSWORD};
use app::api::ErrorCode;
use reqwest::StatusCode;
use server::db::users;

#[tokio::test]
async fn login_answers_200_with_a_new_session() {
    let app = spawn_app().await;
    let email = unique_email();
    let registered = app.register(&email).await;
    let response = app.login_raw(&email.to_uppercase(), PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let logged_in = signed(response).await;
    assert_eq!(logged_in.session.user, registered.session.user);
    assert_ne!(
        logged_in.refresh_token(),
        registered.refresh_token(),
        "a new family per login"
    );
    let a = app.me_raw(&logged_in.session.access_token).await;
    assert_eq!(a.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_email_and_wrong_password_look_the_same() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email).await;
    let wrong_password = app.login_raw(&email, "not the password").await;
    let unknown_email = app.login_raw(&unique_email(), "not the password").await;
    assert_eq!(wrong_password.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_email.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_password.headers().get("set-cookie"), None);
    let a = wrong_password.text().await.unwrap();
    let b = unknown_email.text().await.unwrap();
    assert_eq!(a, b, "identical bodies");
    assert!(a.contains("invalid_credentials"), "{a}");
}

#[tokio::test]
async fn login_validation() {
    let app = spawn_app().await;
    for (email, password, field) in [
        ("nope", PASSWORD, "email"),
        ("ada@example.com", "", "password"),
        ("ada@example.com", &"p".repeat(129), "password"),
    ] {
        let body = assert_error(
            app.login_raw(email, password).await,
            StatusCode::BAD_REQUEST,
            ErrorCode::ValidationFailed,
        )
        .await;
        assert!(
            body.error.fields.unwrap().contains_key(field),
            "{email} {field}"
        );
    }
}

#[tokio::test]
async fn a_disabled_account_is_told_only_after_the_right_password() {
    let app = spawn_app().await;
    let email = unique_email();
    let signed = app.register(&email).await;
    users::set_active(app.db.pool(), &signed.session.user.id, false, 0)
        .await
        .unwrap();
    let wrong = app.login_raw(&email, "not the password").await;
    assert_error(
        wrong,
        StatusCode::UNAUTHORIZED,
        ErrorCode::InvalidCredentials,
    )
    .await;
    let right = app.login_raw(&email, PASSWORD).await;
    assert_error(right, StatusCode::FORBIDDEN, ErrorCode::AccountDisabled).await;
}

#[tokio::test]
async fn an_old_hash_is_upgraded_at_the_next_login() {
    use argon2::{
        password_hash::{PasswordHasher, SaltString},
        Algorithm, Argon2, Params, Version,
    };
    let app = spawn_app().await;
    let email = unique_email();
    let signed = app.register(&email).await;
    let old = Argon2::new(
        Algorithm::Argon2i,
        Version::V0x13,
        Params::new(4096, 3, 1, None).unwrap(),
    );
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let old_hash = old
        .hash_password(PASSWORD.as_bytes(), &salt)
        .unwrap()
        .to_string();
    let id = &signed.session.user.id;
    users::set_password_hash(app.db.pool(), id, &old_hash, 0)
        .await
        .unwrap();

    app.login(&email).await;
    let row = users::find_by_id(app.db.pool(), id).await.unwrap().unwrap();
    assert!(
        row.password_hash
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{}",
        row.password_hash
    );
    app.login(&email).await;
}

#[tokio::test]
async fn login_is_throttled_per_account_and_address_and_a_success_resets_it() {
    let app = spawn_app_with(&[("RATE_LIMIT_ENABLED", "true")]).await;
    let email = unique_email();
    app.register(&email).await;
    for _ in 0..9 {
        let r = app.login_raw(&email, "wrong password").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // A success resets the account's count...
    app.login(&email).await;
    for _ in 0..10 {
        let r = app.login_raw(&email, "wrong password").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // ...and ten failures spend the budget, even for the right password.
    let limited = app.login_raw(&email, PASSWORD).await;
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    assert_error(
        limited,
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
    )
    .await;
    // Another account from the same address still may log in.
    let other = unique_email();
    app.register(&other).await;
    app.login(&other).await;
    // The window ends.
    app.clock.advance(901);
    app.login(&email).await;
}

#[tokio::test]
async fn register_is_throttled_per_address() {
    let app = spawn_app_with(&[("RATE_LIMIT_ENABLED", "true")]).await;
    for _ in 0..20 {
        let r = app.register_raw("bad", "x", "").await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    let limited = app.register_raw(&unique_email(), PASSWORD, "Ada").await;
    assert!(limited.headers().contains_key("retry-after"));
    assert_error(
        limited,
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
    )
    .await;
}
