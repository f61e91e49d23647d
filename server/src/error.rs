//! The one error type of the HTTP API. Every failure becomes the contract's JSON body here.

use api::{ErrorBody, ErrorCode, ErrorDetail};
use axum::{
    extract::rejection::{JsonRejection, PathRejection, QueryRejection},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use std::collections::BTreeMap;

/// The `Retry-After` of a 503 `unavailable`.
const UNAVAILABLE_RETRY_SECS: u64 = 2;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("validation failed")]
    Validation(BTreeMap<String, String>),
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("service unavailable")]
    Unavailable,
    /// The request ran past its time limit (`HTTP_REQUEST_TIMEOUT_SECS`).
    #[error("request time limit reached")]
    TimedOut,
    #[error("email already registered")]
    EmailTaken,
    #[error("too many attempts")]
    RateLimited { retry_after: u64 },
    #[error("password hashing saturated")]
    Overloaded { retry_after: u64 },
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("account disabled")]
    AccountDisabled,
    #[error("refresh token missing")]
    RefreshMissing,
    #[error("refresh token invalid")]
    RefreshInvalid,
    #[error("refresh token expired")]
    RefreshExpired,
    #[error("refresh token reused")]
    RefreshReused,
    #[error("origin forbidden")]
    OriginForbidden,
    #[error("access token missing")]
    TokenMissing,
    #[error("access token invalid")]
    TokenInvalid,
    #[error("access token expired")]
    TokenExpired,
    #[error("forbidden")]
    Forbidden,
    #[error("last active admin")]
    LastAdmin,
    #[error("email not verified")]
    EmailUnverified,
    #[error("email already verified")]
    AlreadyVerified,
    #[error("wrong verification code")]
    CodeInvalid { attempts_left: i64 },
    #[error("verification code expired or none pending")]
    CodeExpired,
    #[error("verification code attempts exhausted")]
    CodeAttemptsExceeded,
    #[error("reset token invalid")]
    ResetTokenInvalid,
    #[error("reset token expired")]
    ResetTokenExpired,
    #[error("identity provider unavailable")]
    ProviderUnavailable,
    #[error("sign-in cancelled at the provider")]
    OidcCancelled,
    #[error("sign-in flow invalid")]
    OidcStateInvalid,
    /// The reason is for the log (`detail`), never for the browser.
    #[error("sign-in at the provider failed: {0}")]
    OidcFailed(String),
    #[error("provider email not verified")]
    OidcEmailUnverified,
    #[error("identity linked to another account")]
    IdentityTaken,
    #[error("no password set")]
    PasswordNotSet,
    #[error("last sign-in method")]
    LastSignInMethod,
    /// A correct password of a person with a second factor: the token carries it over to
    /// the second step.
    #[error("second factor required")]
    MfaRequired {
        mfa_token: String,
        methods: Vec<&'static str>,
    },
    #[error("mfa token invalid")]
    MfaTokenInvalid,
    /// The fifth wrong code ended the `mfa_token`: `rate_limited`, and no `Retry-After`
    /// (that token never works again; a new sign-in may start at once).
    #[error("mfa token ended by wrong codes")]
    MfaTokenEnded,
    /// A wrong (or already used) authenticator or recovery code.
    #[error("wrong second-factor code")]
    WrongCode,
    #[error("second factor already enabled")]
    MfaAlreadyEnabled,
    #[error("no authenticator set up to confirm")]
    MfaNotPending,
    /// The reason is for the log, never for the browser.
    #[error("passkey refused: {0}")]
    PasskeyInvalid(String),
    /// A sign-in with a passkey that failed a check: `passkey_invalid` as a 401. The reason
    /// is for the log.
    #[error("passkey sign-in refused: {0}")]
    PasskeySignInRefused(String),
    /// Anything unexpected: logged with its cause, answered as a bare 500.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> ApiError {
        ApiError::Internal(e.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            // The one code with two statuses: a passkey that signs nobody in is a 401, like
            // a wrong password; a registration's is a 400.
            ApiError::PasskeySignInRefused(_) => StatusCode::UNAUTHORIZED,
            _ => status_of(self.code()),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Validation(_) => ErrorCode::ValidationFailed,
            ApiError::InvalidJson(_) => ErrorCode::InvalidJson,
            ApiError::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            ApiError::NotFound => ErrorCode::NotFound,
            ApiError::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            ApiError::Unavailable | ApiError::TimedOut => ErrorCode::Unavailable,
            ApiError::Internal(_) => ErrorCode::Internal,
            ApiError::EmailTaken => ErrorCode::EmailTaken,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
            ApiError::Overloaded { .. } => ErrorCode::Overloaded,
            ApiError::InvalidCredentials => ErrorCode::InvalidCredentials,
            ApiError::AccountDisabled => ErrorCode::AccountDisabled,
            ApiError::RefreshMissing => ErrorCode::RefreshMissing,
            ApiError::RefreshInvalid => ErrorCode::RefreshInvalid,
            ApiError::RefreshExpired => ErrorCode::RefreshExpired,
            ApiError::RefreshReused => ErrorCode::RefreshReused,
            ApiError::OriginForbidden => ErrorCode::OriginForbidden,
            ApiError::TokenMissing => ErrorCode::TokenMissing,
            ApiError::TokenInvalid => ErrorCode::TokenInvalid,
            ApiError::TokenExpired => ErrorCode::TokenExpired,
            ApiError::Forbidden => ErrorCode::Forbidden,
            ApiError::LastAdmin => ErrorCode::LastAdmin,
            ApiError::EmailUnverified => ErrorCode::EmailUnverified,
            ApiError::AlreadyVerified => ErrorCode::AlreadyVerified,
            ApiError::CodeInvalid { .. } => ErrorCode::CodeInvalid,
            ApiError::CodeExpired => ErrorCode::CodeExpired,
            ApiError::CodeAttemptsExceeded => ErrorCode::CodeAttemptsExceeded,
            ApiError::ResetTokenInvalid => ErrorCode::ResetTokenInvalid,
            ApiError::ResetTokenExpired => ErrorCode::ResetTokenExpired,
            ApiError::ProviderUnavailable => ErrorCode::ProviderUnavailable,
            ApiError::OidcCancelled => ErrorCode::OidcCancelled,
            ApiError::OidcStateInvalid => ErrorCode::OidcStateInvalid,
            ApiError::OidcFailed(_) => ErrorCode::OidcFailed,
            ApiError::OidcEmailUnverified => ErrorCode::OidcEmailUnverified,
            ApiError::IdentityTaken => ErrorCode::IdentityTaken,
            ApiError::PasswordNotSet => ErrorCode::PasswordNotSet,
            ApiError::LastSignInMethod => ErrorCode::LastSignInMethod,
            ApiError::MfaRequired { .. } => ErrorCode::MfaRequired,
            ApiError::MfaTokenInvalid => ErrorCode::MfaTokenInvalid,
            ApiError::MfaTokenEnded => ErrorCode::RateLimited,
            ApiError::WrongCode => ErrorCode::CodeInvalid,
            ApiError::MfaAlreadyEnabled => ErrorCode::MfaAlreadyEnabled,
            ApiError::MfaNotPending => ErrorCode::MfaNotPending,
            ApiError::PasskeyInvalid(_) | ApiError::PasskeySignInRefused(_) => {
                ErrorCode::PasskeyInvalid
            }
        }
    }

    /// Text for people. Never carries internal detail.
    fn message(&self) -> String {
        match self {
            ApiError::Validation(_) => "Some fields are not valid.".into(),
            ApiError::InvalidJson(why) => format!("The request body is not valid JSON: {why}"),
            ApiError::PayloadTooLarge => "The request body is larger than 64 KiB.".into(),
            ApiError::NotFound => "No such API route.".into(),
            ApiError::MethodNotAllowed => "This method is not allowed on this route.".into(),
            ApiError::Unavailable => "The service is not ready.".into(),
            ApiError::TimedOut => "The server took too long to answer. Try again.".into(),
            ApiError::Internal(_) => "Something went wrong on our side.".into(),
            ApiError::EmailTaken => "An account with this email already exists.".into(),
            ApiError::RateLimited { .. } => "Too many attempts. Try again later.".into(),
            ApiError::Overloaded { .. } => "The server is busy. Try again in a moment.".into(),
            ApiError::InvalidCredentials => "The email or password is not correct.".into(),
            ApiError::AccountDisabled => "This account is disabled.".into(),
            ApiError::RefreshMissing => "No session: sign in.".into(),
            ApiError::RefreshInvalid => "This session is no longer valid: sign in again.".into(),
            ApiError::RefreshExpired => "This session has expired: sign in again.".into(),
            ApiError::RefreshReused => {
                "This session was ended for your safety: sign in again.".into()
            }
            ApiError::OriginForbidden => "Requests from this origin are not allowed.".into(),
            ApiError::TokenMissing => "An access token is required.".into(),
            ApiError::TokenInvalid => "The access token is not valid.".into(),
            ApiError::TokenExpired => "The access token has expired.".into(),
            ApiError::Forbidden => "You are not allowed to do this.".into(),
            ApiError::LastAdmin => "The last active admin cannot be demoted or disabled.".into(),
            ApiError::EmailUnverified => "Verify your email address first.".into(),
            ApiError::AlreadyVerified => "This email address is already verified.".into(),
            ApiError::CodeInvalid { attempts_left } => match attempts_left {
                1 => "The code is not correct. 1 attempt left.".into(),
                n => format!("The code is not correct. {n} attempts left."),
            },
            ApiError::CodeExpired => "This code has expired. Request a new one.".into(),
            ApiError::CodeAttemptsExceeded => "Too many wrong codes. Request a new one.".into(),
            ApiError::ResetTokenInvalid => {
                "This reset link is not valid or was already used. Request a new one.".into()
            }
            ApiError::ResetTokenExpired => "This reset link has expired. Request a new one.".into(),
            ApiError::ProviderUnavailable => {
                "This sign-in provider cannot be reached right now. Try again later, or use your password.".into()
            }
            ApiError::OidcCancelled => api::oidc_error_text(ErrorCode::OidcCancelled).into(),
            ApiError::OidcStateInvalid => api::oidc_error_text(ErrorCode::OidcStateInvalid).into(),
            ApiError::OidcFailed(_) => api::oidc_error_text(ErrorCode::OidcFailed).into(),
            ApiError::OidcEmailUnverified => {
                api::oidc_error_text(ErrorCode::OidcEmailUnverified).into()
            }
            ApiError::IdentityTaken => api::oidc_error_text(ErrorCode::IdentityTaken).into(),
            ApiError::PasswordNotSet => {
                "This account has no password yet: set one with \"Forgot your password?\".".into()
            }
            ApiError::LastSignInMethod => {
                "This is your only way to sign in: set a password or connect another provider first.".into()
            }
            ApiError::MfaRequired { .. } => "Enter the code from your authenticator app.".into(),
            ApiError::MfaTokenInvalid => {
                "This sign-in has expired or was already completed: log in again.".into()
            }
            ApiError::WrongCode => "That code is not correct.".into(),
            ApiError::MfaTokenEnded => "Too many wrong codes: log in again.".into(),
            ApiError::MfaAlreadyEnabled => "Two-step sign-in is already on.".into(),
            ApiError::MfaNotPending => {
                "There is no authenticator app to confirm: set one up first.".into()
            }
            ApiError::PasskeyInvalid(_) | ApiError::PasskeySignInRefused(_) => {
                "That passkey could not be used.".into()
            }
        }
    }
}

/// The status every answer with `code` has: one place, so the OpenAPI document
/// (`crate::openapi`) lists each code under the status it really comes with.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::ValidationFailed
        | ErrorCode::InvalidJson
        | ErrorCode::CodeInvalid
        | ErrorCode::CodeExpired
        | ErrorCode::CodeAttemptsExceeded
        | ErrorCode::ResetTokenInvalid
        | ErrorCode::ResetTokenExpired
        | ErrorCode::OidcCancelled
        | ErrorCode::OidcStateInvalid
        | ErrorCode::OidcFailed
        | ErrorCode::PasswordNotSet
        | ErrorCode::PasskeyInvalid => StatusCode::BAD_REQUEST,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::Unavailable | ErrorCode::Overloaded | ErrorCode::ProviderUnavailable => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ErrorCode::Internal | ErrorCode::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::EmailTaken
        | ErrorCode::LastAdmin
        | ErrorCode::AlreadyVerified
        | ErrorCode::IdentityTaken
        | ErrorCode::LastSignInMethod
        | ErrorCode::MfaAlreadyEnabled
        | ErrorCode::MfaNotPending => StatusCode::CONFLICT,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::InvalidCredentials
        | ErrorCode::RefreshMissing
        | ErrorCode::RefreshInvalid
        | ErrorCode::RefreshExpired
        | ErrorCode::RefreshReused
        | ErrorCode::TokenMissing
        | ErrorCode::TokenInvalid
        | ErrorCode::TokenExpired
        | ErrorCode::MfaRequired
        | ErrorCode::MfaTokenInvalid => StatusCode::UNAUTHORIZED,
        ErrorCode::AccountDisabled
        | ErrorCode::OriginForbidden
        | ErrorCode::Forbidden
        | ErrorCode::EmailUnverified
        | ErrorCode::OidcEmailUnverified => StatusCode::FORBIDDEN,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(cause) => tracing::error!(error = %cause, "internal error"),
            ApiError::PasskeyInvalid(why) | ApiError::PasskeySignInRefused(why) => {
                tracing::info!(%why, "passkey refused")
            }
            _ => {}
        }
        let fields = match &self {
            ApiError::Validation(fields) => Some(fields.clone()),
            _ => None,
        };
        let (mfa_token, methods) = match &self {
            ApiError::MfaRequired { mfa_token, methods } => (
                Some(mfa_token.clone()),
                Some(methods.iter().map(|m| m.to_string()).collect()),
            ),
            _ => (None, None),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.message(),
                fields,
                mfa_token,
                methods,
            },
        };
        let mut response = (self.status(), Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match &self {
            // RFC 6750: no `error` parameter when no token was sent.
            ApiError::TokenMissing => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="api""#),
                );
            }
            ApiError::TokenInvalid | ApiError::TokenExpired => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="api", error="invalid_token""#),
                );
            }
            ApiError::RateLimited { retry_after } | ApiError::Overloaded { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            // Most outages this stands for (a database restarting, a request cut by its time
            // limit) pass within seconds.
            ApiError::Unavailable | ApiError::TimedOut => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(UNAVAILABLE_RETRY_SECS),
                );
            }
            _ => {}
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        match rejection {
            JsonRejection::BytesRejection(_)
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                ApiError::PayloadTooLarge
            }
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::InvalidJson("expected Content-Type: application/json".into())
            }
            other => ApiError::InvalidJson(other.body_text()),
        }
    }
}

/// A path parameter that cannot be decoded (invalid UTF-8 after percent-decoding, or not
/// the type the route expects) names no resource: 404 `not_found`, in the contract's shape.
impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        tracing::debug!(error = %rejection.body_text(), "path parameter refused");
        ApiError::NotFound
    }
}

/// A query string that cannot be read into what the route expects (a parameter given twice,
/// say): 400 `validation_failed`, naming the query, in the contract's shape.
impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        tracing::debug!(error = %rejection.body_text(), "query string refused");
        ApiError::Validation(BTreeMap::from([(
            "query".to_string(),
            "The query string cannot be read.".to_string(),
        )]))
    }
}

impl From<crate::auth::password::PasswordError> for ApiError {
    fn from(e: crate::auth::password::PasswordError) -> ApiError {
        match e {
            crate::auth::password::PasswordError::Overloaded => {
                ApiError::Overloaded { retry_after: 1 }
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> ApiError {
        match e {
            // No connection, or no write turn, within the wait: busy, not broken.
            // No connection in time because none can be made: the database is down.
            sqlx::Error::PoolTimedOut if !crate::db::seems_reachable() => {
                tracing::warn!("database unreachable: no connection in time");
                ApiError::Unavailable
            }
            sqlx::Error::PoolTimedOut => {
                tracing::warn!("database busy: no connection or write turn in time");
                ApiError::Overloaded { retry_after: 1 }
            }
            // The database out of reach (stopped, restarting, the connection cut): the
            // service is unavailable for now, not broken; the client may try again.
            ref e if database_unreachable(e) => {
                tracing::warn!(error = %e, "database unreachable");
                // A pool closed here (shutting down) says nothing of the database.
                if !matches!(e, sqlx::Error::PoolClosed) {
                    crate::db::reachable(false);
                }
                ApiError::Unavailable
            }
            other => ApiError::internal(other),
        }
    }
}

/// Whether `e` says the database cannot be reached, rather than that a statement failed.
fn database_unreachable(e: &sqlx::Error) -> bool {
    crate::db::is_unreachable(e)
}

/// `Json` whose rejections use the contract's error shape.
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `Query` whose rejections use the contract's error shape (see `From<QueryRejection>`).
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `Path` whose rejections use the contract's error shape (see `From<PathRejection>`).
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn internal_errors_hide_their_cause() {
        let response = ApiError::internal("db password is hunter2").into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        let body: ErrorBody = serde_json::from_str(&text).unwrap();
        assert_eq!(body.error.code, ErrorCode::Internal);
    }

    #[tokio::test]
    async fn validation_errors_carry_fields() {
        let fields = BTreeMap::from([("email".to_string(), "is not an email".to_string())]);
        let response = ApiError::Validation(fields.clone()).into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let body: ErrorBody = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body.error.code, ErrorCode::ValidationFailed);
        assert_eq!(body.error.fields, Some(fields));
    }

    #[tokio::test]
    async fn an_undecodable_path_parameter_is_a_json_404() {
        use axum::{body::Body, http::Request, routing::get, Router};
        use tower::ServiceExt;
        let app = Router::new().route(
            "/things/{id}",
            get(|ApiPath(id): ApiPath<String>| async move { id }),
        );
        let response = app
            .clone()
            .oneshot(Request::get("/things/%FF").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let body: ErrorBody = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body.error.code, ErrorCode::NotFound);
        let response = app
            .oneshot(Request::get("/things/%C3%A9").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        assert_eq!(&bytes[..], "é".as_bytes());
    }
}
