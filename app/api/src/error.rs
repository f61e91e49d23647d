use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Every `error.code` of the API. The browser matches on these, never on messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    ValidationFailed,
    InvalidJson,
    PayloadTooLarge,
    NotFound,
    MethodNotAllowed,
    EmailTaken,
    RateLimited,
    Overloaded,
    InvalidCredentials,
    AccountDisabled,
    RefreshMissing,
    RefreshInvalid,
    RefreshExpired,
    RefreshReused,
    OriginForbidden,
    TokenMissing,
    TokenInvalid,
    TokenExpired,
    Forbidden,
    /// The last active admin cannot be demoted or disabled.
    LastAdmin,
    /// `REQUIRE_VERIFIED_EMAIL` is on and this person has not verified their email yet.
    EmailUnverified,
    AlreadyVerified,
    CodeInvalid,
    CodeExpired,
    CodeAttemptsExceeded,
    ResetTokenInvalid,
    ResetTokenExpired,
    /// The identity provider cannot be reached now (its start route).
    ProviderUnavailable,
    /// At a provider, the person said no.
    OidcCancelled,
    /// No, a wrong, an expired or an already used sign-in flow at a provider.
    OidcStateInvalid,
    /// The provider's code exchange or its ID token failed a check.
    OidcFailed,
    /// The provider does not vouch for the person's email.
    OidcEmailUnverified,
    /// That provider's identity belongs to another account.
    IdentityTaken,
    /// The account has no password (it signs in through providers).
    PasswordNotSet,
    /// Removing this would leave the account no way to sign in.
    LastSignInMethod,
    /// A correct password, and the second factor is on: the error also carries the
    /// `mfa_token` for the second step and its `methods`.
    MfaRequired,
    /// No, an expired, a used or an ended (five wrong codes) `mfa_token`.
    MfaTokenInvalid,
    MfaAlreadyEnabled,
    /// No authenticator secret waits to be confirmed.
    MfaNotPending,
    /// A passkey's registration or assertion failed a check.
    PasskeyInvalid,
    Unavailable,
    Internal,
    /// A code this build does not know yet (a newer server); treated as a generic failure.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The code of a wire name (`Unknown` for a name this build does not know), as when
    /// it is read from JSON.
    pub fn from_wire(name: &str) -> ErrorCode {
        use serde::de::{value, IntoDeserializer};
        let name: value::StrDeserializer<'_, value::Error> = name.into_deserializer();
        ErrorCode::deserialize(name).unwrap_or(ErrorCode::Unknown)
    }

    /// The wire name, as serde writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ValidationFailed => "validation_failed",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::EmailTaken => "email_taken",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::AccountDisabled => "account_disabled",
            ErrorCode::RefreshMissing => "refresh_missing",
            ErrorCode::RefreshInvalid => "refresh_invalid",
            ErrorCode::RefreshExpired => "refresh_expired",
            ErrorCode::RefreshReused => "refresh_reused",
            ErrorCode::OriginForbidden => "origin_forbidden",
            ErrorCode::TokenMissing => "token_missing",
            ErrorCode::TokenInvalid => "token_invalid",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::LastAdmin => "last_admin",
            ErrorCode::EmailUnverified => "email_unverified",
            ErrorCode::AlreadyVerified => "already_verified",
            ErrorCode::CodeInvalid => "code_invalid",
            ErrorCode::CodeExpired => "code_expired",
            ErrorCode::CodeAttemptsExceeded => "code_attempts_exceeded",
            ErrorCode::ResetTokenInvalid => "reset_token_invalid",
            ErrorCode::ResetTokenExpired => "reset_token_expired",
            ErrorCode::ProviderUnavailable => "provider_unavailable",
            ErrorCode::OidcCancelled => "oidc_cancelled",
            ErrorCode::OidcStateInvalid => "oidc_state_invalid",
            ErrorCode::OidcFailed => "oidc_failed",
            ErrorCode::OidcEmailUnverified => "oidc_email_unverified",
            ErrorCode::IdentityTaken => "identity_taken",
            ErrorCode::PasswordNotSet => "password_not_set",
            ErrorCode::LastSignInMethod => "last_sign_in_method",
            ErrorCode::MfaRequired => "mfa_required",
            ErrorCode::MfaTokenInvalid => "mfa_token_invalid",
            ErrorCode::MfaAlreadyEnabled => "mfa_already_enabled",
            ErrorCode::MfaNotPending => "mfa_not_pending",
            ErrorCode::PasskeyInvalid => "passkey_invalid",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
            ErrorCode::Unknown => "unknown",
        }
    }
}

/// What a person reads when a sign-in at an identity provider came back with `code` (the
/// login page's `?error=`, the account page's after linking): the server renders it, and
/// the browser shows the same words.
pub fn oidc_error_text(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::OidcCancelled => "You cancelled the sign-in at the provider.",
        ErrorCode::OidcStateInvalid => {
            "That sign-in link has expired or was already used. Please try again."
        }
        ErrorCode::OidcEmailUnverified => {
            "The provider did not confirm your email address, so we cannot sign you in with it."
        }
        ErrorCode::AccountDisabled => "This account is disabled.",
        ErrorCode::IdentityTaken => {
            "That account at the provider is already linked to another account here."
        }
        ErrorCode::ProviderUnavailable => {
            "That provider cannot be reached right now. Please try again later."
        }
        _ => "The sign-in at the provider did not work. Please try again.",
    }
}

/// `{"error": {...}}`, the one error shape of the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    /// Only with `validation_failed`: field name to the reason it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, String>>,
    /// Only with `mfa_required`: the single-use token that carries the correct password
    /// over to `POST /api/auth/mfa/verify`, and the ways the second step can be taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ErrorCode; 42] = [
        ErrorCode::ValidationFailed,
        ErrorCode::InvalidJson,
        ErrorCode::PayloadTooLarge,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::EmailTaken,
        ErrorCode::RateLimited,
        ErrorCode::Overloaded,
        ErrorCode::InvalidCredentials,
        ErrorCode::AccountDisabled,
        ErrorCode::RefreshMissing,
        ErrorCode::RefreshInvalid,
        ErrorCode::RefreshExpired,
        ErrorCode::RefreshReused,
        ErrorCode::OriginForbidden,
        ErrorCode::TokenMissing,
        ErrorCode::TokenInvalid,
        ErrorCode::TokenExpired,
        ErrorCode::Forbidden,
        ErrorCode::LastAdmin,
        ErrorCode::EmailUnverified,
        ErrorCode::AlreadyVerified,
        ErrorCode::CodeInvalid,
        ErrorCode::CodeExpired,
        ErrorCode::CodeAttemptsExceeded,
        ErrorCode::ResetTokenInvalid,
        ErrorCode::ResetTokenExpired,
        ErrorCode::ProviderUnavailable,
        ErrorCode::OidcCancelled,
        ErrorCode::OidcStateInvalid,
        ErrorCode::OidcFailed,
        ErrorCode::OidcEmailUnverified,
        ErrorCode::IdentityTaken,
        ErrorCode::PasswordNotSet,
        ErrorCode::LastSignInMethod,
        ErrorCode::MfaRequired,
        ErrorCode::MfaTokenInvalid,
        ErrorCode::MfaAlreadyEnabled,
        ErrorCode::MfaNotPending,
        ErrorCode::PasskeyInvalid,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    #[test]
    fn as_str_matches_the_serde_name() {
        for code in ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
            assert_eq!(ErrorCode::from_wire(code.as_str()), code);
        }
    }

    #[test]
    fn unknown_codes_from_a_newer_server_still_parse() {
        let body: ErrorBody =
            serde_json::from_str(r#"{"error":{"code":"brand_new","message":"x"}}"#).unwrap();
        assert_eq!(body.error.code, ErrorCode::Unknown);
        assert_eq!(ErrorCode::from_wire("brand_new"), ErrorCode::Unknown);
        assert_eq!(body.error.fields, None);
    }

    #[test]
    fn fields_are_omitted_when_absent() {
        let body = ErrorBody {
            error: ErrorDetail {
                code: ErrorCode::NotFound,
                message: "No such route.".into(),
                fields: None,
                mfa_token: None,
                methods: None,
            },
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":{"code":"not_found","message":"No such route."}}"#
        );
    }
}
