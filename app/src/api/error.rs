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
    Unavailable,
    Internal,
    /// A code this build does not know yet (a newer server); treated as a generic failure.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
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
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
            ErrorCode::Unknown => "unknown",
        }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ErrorCode; 29] = [
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
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    #[test]
    fn as_str_matches_the_serde_name() {
        for code in ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
        }
    }

    #[test]
    fn unknown_codes_from_a_newer_server_still_parse() {
        let body: ErrorBody =
            serde_json::from_str(r#"{"error":{"code":"brand_new","message":"x"}}"#).unwrap();
        assert_eq!(body.error.code, ErrorCode::Unknown);
        assert_eq!(body.error.fields, None);
    }

    #[test]
    fn fields_are_omitted_when_absent() {
        let body = ErrorBody {
            error: ErrorDetail {
                code: ErrorCode::NotFound,
                message: "No such route.".into(),
                fields: None,
            },
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":{"code":"not_found","message":"No such route."}}"#
        );
    }
}
