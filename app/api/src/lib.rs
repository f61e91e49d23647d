//! Types of the HTTP API (described in `docs/api.md`), compiled into both the server and
//! the browser so the two can never disagree on a field, an error code or an endpoint.
//!
//! A crate of its own, which `app` re-exports as `app::api`: the server's library depends
//! on this crate and not on `app`, so a change in a page rebuilds only `app` and the
//! server's binary, not the whole server (`cargo leptos watch`'s turnaround). With the
//! `openapi` feature (the server's) the types also describe themselves for the OpenAPI
//! document; the browser's bundle never carries that.

pub mod encode;
pub mod endpoints;
mod error;
pub mod next;

pub use error::{oidc_error_text, ErrorBody, ErrorCode, ErrorDetail};

use serde::{Deserialize, Serialize};

/// A person, as `GET /api/me` and every `Session` return it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub email_verified: bool,
    /// RFC 3339.
    pub created_at: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        match value {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// An identity provider people may sign in with: `GET /api/auth/providers`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInfo {
    pub id: String,
    /// For its button: "Continue with <name>".
    pub name: String,
}

/// The answer of register, login and refresh.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub user: User,
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    /// Only for non-browser clients that asked with `X-Refresh-Token-Delivery: body`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterRequest {
    #[cfg_attr(feature = "openapi", schema(format = Email))]
    pub email: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 128))]
    pub password: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100))]
    pub name: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRequest {
    #[cfg_attr(feature = "openapi", schema(format = Email))]
    pub email: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 128))]
    pub password: String,
}

/// Body of `/healthz` and `/readyz`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
}

/// One signed-in device of the person, as `GET /api/sessions` lists it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub id: String,
    /// Browser and system, from the user agent ("Firefox on Linux").
    pub device: String,
    pub ip: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub last_used_at: String,
    /// The session of the access token that asked.
    pub current: bool,
    /// How it began: `password`, or the id of an identity provider.
    pub method: String,
}

/// `POST /api/auth/oidc/{id}/link`: where the browser goes to link that provider.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkAnswer {
    pub url: String,
}

/// `GET /api/me/identities`: how the person can sign in.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInMethods {
    pub password_set: bool,
    pub identities: Vec<IdentityInfo>,
}

/// An identity provider's account linked to the person's.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityInfo {
    /// The provider's id.
    pub provider: String,
    /// The email the provider gave when it was linked.
    pub email: String,
    /// RFC 3339.
    pub linked_at: String,
}

/// `POST /api/auth/password/change`: the signed-in person's new password.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangePasswordRequest {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 128))]
    pub current_password: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 128))]
    pub new_password: String,
}

/// `POST /api/auth/verify-email`: the 6-digit code from the email.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyEmailRequest {
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9]{6}$"))]
    pub code: String,
}

/// `POST /api/me/mfa/totp/setup`: a pending authenticator secret, for the person's app.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpSetup {
    /// Base32, for typing into the app by hand.
    pub secret: String,
    pub otpauth_uri: String,
    /// The URI as a QR code, an SVG document drawn on the server.
    pub qr_svg: String,
}

/// A code from the authenticator app; where a recovery code is taken too (turning the
/// second factor off, new recovery codes), either kind.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRequest {
    pub code: String,
}

/// Ten single-use recovery codes, shown this once (the server keeps only digests).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

/// `GET /api/me/mfa`: whether the second factor is on, and how many recovery codes are
/// left.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaStatus {
    pub totp_enabled: bool,
    pub recovery_codes_left: u32,
}

/// `POST /api/auth/mfa/verify`: the second step of a sign-in, with either an authenticator
/// code or a recovery code.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaVerifyRequest {
    pub mfa_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_code: Option<String>,
}

/// WebAuthn JSON, passed through as browsers write and read it: the options a ceremony's
/// start answers (for `PublicKeyCredential.parseCreationOptionsFromJSON` or
/// `parseRequestOptionsFromJSON`, from its `publicKey`), and the credential its finish takes
/// (`PublicKeyCredential.toJSON()`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", schema(value_type = Object))]
#[serde(transparent)]
pub struct WebAuthnJson(pub serde_json::Value);

/// `POST /api/me/passkeys/register/start`: the new passkey's name (default "Passkey").
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyRegistrationStart {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 60))]
    pub name: Option<String>,
}

/// One of the person's passkeys.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyInfo {
    pub id: String,
    pub name: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339; none until it signs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
}

/// `POST /api/auth/password/forgot`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgotPasswordRequest {
    #[cfg_attr(feature = "openapi", schema(format = Email))]
    pub email: String,
}

/// `POST /api/auth/password/reset`: the token from the emailed link and the new password.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetPasswordRequest {
    pub token: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 128))]
    pub password: String,
}

/// A person as admins see them: the person's fields, and `active`, side by side.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "AdminUserWire")]
pub struct AdminUser {
    #[serde(flatten)]
    pub user: User,
    pub active: bool,
}

/// [`AdminUser`] as it is read. serde reads a flattened struct by buffering the whole
/// object first, code the browser's WASM otherwise does without.
#[derive(Deserialize)]
struct AdminUserWire {
    id: String,
    email: String,
    name: String,
    role: Role,
    email_verified: bool,
    created_at: String,
    active: bool,
}

impl From<AdminUserWire> for AdminUser {
    fn from(wire: AdminUserWire) -> AdminUser {
        AdminUser {
            user: User {
                id: wire.id,
                email: wire.email,
                name: wire.name,
                role: wire.role,
                email_verified: wire.email_verified,
                created_at: wire.created_at,
            },
            active: wire.active,
        }
    }
}

/// `GET /api/admin/users`: one page of people.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPage {
    pub users: Vec<AdminUser>,
    pub total: u64,
    pub page: u32,
    pub per_page: u32,
}

/// `GET /api/admin/users?page&per_page&q`. Absent values take the server's defaults.
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserListQuery {
    /// From 1 (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(minimum = 1))]
    pub page: Option<u32>,
    /// 1 to 100 (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 100))]
    pub per_page: Option<u32>,
    /// Searched for in emails and names, ignoring case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
}

/// `GET /api/admin/audit?page&per_page`. Absent values take the server's defaults.
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    /// From 1 (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(minimum = 1))]
    pub page: Option<u32>,
    /// 1 to 100 (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 100))]
    pub per_page: Option<u32>,
}

/// `PATCH /api/admin/users/{id}`: what to change.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateUserRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

/// One security event, as `GET /api/admin/audit` lists it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: String,
    /// RFC 3339.
    pub at: String,
    /// `login_succeeded`, `login_failed`, `refresh_reused`, `logout`, `password_changed`,
    /// `session_revoked`, `access_changed`, `sessions_revoked_by_admin`, `admin_created`,
    /// `email_verified`, `password_reset_requested`, `password_reset`.
    pub action: String,
    pub actor_id: Option<String>,
    pub subject_id: Option<String>,
    /// The emails of `actor_id` and `subject_id`, as they are now.
    pub actor_email: Option<String>,
    pub subject_email: Option<String>,
    pub ip: Option<String>,
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_users_are_read_as_they_are_written() {
        let admin_user = AdminUser {
            user: User {
                id: "u1".into(),
                email: "ada@example.com".into(),
                name: "Ada".into(),
                role: Role::Admin,
                email_verified: false,
                created_at: "2026-11-29T12:00:00Z".into(),
            },
            active: true,
        };
        let json = serde_json::to_string(&admin_user).unwrap();
        assert_eq!(
            json,
            r#"{"id":"u1","email":"ada@example.com","name":"Ada","role":"admin","email_verified":false,"created_at":"2026-11-29T12:00:00Z","active":true}"#
        );
        assert_eq!(
            serde_json::from_str::<AdminUser>(&json).unwrap(),
            admin_user
        );
    }
}
