//! Input that looks like something else: Unicode look-alikes of an address already taken,
//! invisible characters in an address, control characters in a name.

use crate::helpers::{assert_error, spawn_app, PASSWORD};
use app::api::ErrorCode;
use reqwest::StatusCode;

#[tokio::test]
async fn look_alikes_of_a_registered_email_are_the_same_account() {
    let app = spawn_app().await;
    app.register("kate@x.com").await;
    for look_alike in [
        "\u{212A}ate@x.com", // KELVIN SIGN
        "\u{FF4B}ate@x.com", // FULLWIDTH LATIN SMALL LETTER K
        "kate\u{FF20}x.com", // FULLWIDTH COMMERCIAL AT
        "KATE@X.COM",
    ] {
        let response = app.register_raw(look_alike, PASSWORD, "Kate").await;
        assert_error(response, StatusCode::CONFLICT, ErrorCode::EmailTaken).await;
    }
    // Signing in with a look-alike finds the one account.
    let signed = app.login("\u{FF4B}ate@x.com").await;
    assert_eq!(signed.session.user.email, "kate@x.com");
}

#[tokio::test]
async fn a_new_email_is_stored_normalised() {
    let app = spawn_app().await;
    let signed = app.register("\u{FF4B}en@\u{FF58}.com").await;
    assert_eq!(signed.session.user.email, "ken@x.com");
}

#[tokio::test]
async fn emails_with_invisible_or_control_characters_are_refused() {
    let app = spawn_app().await;
    for email in [
        "ka\u{200B}te@x.com",  // ZERO WIDTH SPACE
        "\u{FEFF}kate@x.com",  // BYTE ORDER MARK
        "ka\u{00AD}te@x.com",  // SOFT HYPHEN
        "kate@x\u{2060}.com",  // WORD JOINER
        "kate\u{E0041}@x.com", // TAG LATIN CAPITAL LETTER A
        "kate\u{FE0F}@x.com",  // VARIATION SELECTOR-16
        "ka\u{3164}te@x.com",  // HANGUL FILLER
        "kate\u{202E}@x.com",  // RIGHT-TO-LEFT OVERRIDE
        "ka\u{0}te@x.com",     // NUL
        "ka\u{85}te@x.com",    // NEXT LINE (C1)
    ] {
        let response = app.register_raw(email, PASSWORD, "Kate").await;
        let body = assert_error(
            response,
            StatusCode::BAD_REQUEST,
            ErrorCode::ValidationFailed,
        )
        .await;
        let fields = body.error.fields.unwrap_or_default();
        assert!(fields.contains_key("email"), "{email:?}: {fields:?}");
    }
}

#[tokio::test]
async fn names_with_control_characters_are_refused() {
    let app = spawn_app().await;
    for name in [
        "Ka\u{0}te",
        "Kate\u{1B}[31m",
        "Ka\nte",
        "Kate\u{7F}",
        "Ka\u{9B}te",
    ] {
        let response = app
            .register_raw(&crate::helpers::unique_email(), PASSWORD, name)
            .await;
        let body = assert_error(
            response,
            StatusCode::BAD_REQUEST,
            ErrorCode::ValidationFailed,
        )
        .await;
        let fields = body.error.fields.unwrap_or_default();
        assert!(fields.contains_key("name"), "{name:?}: {fields:?}");
        assert!(!fields.contains_key("email"), "{name:?}: {fields:?}");
    }
}
