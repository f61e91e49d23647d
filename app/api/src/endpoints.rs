//! Every endpoint of the HTTP API under `/api`: its method, its path (in axum's route
//! syntax) and the types of its request and answer. The browser client calls the API only
//! through these constants, and the server registers its routes with their `path`s, so a
//! path, a method or a body type cannot differ between the two sides.
//!
//! `Req` is what a call sends: a JSON body for `POST` and `PATCH`, the query string for
//! `GET` and `DELETE` (`()` for nothing). `Res` is what a success answers; `()` for the
//! answers without a body (204, 202).

use crate::{
    encode::{percent_encode, query_string},
    AdminUser, AuditEntry, AuditQuery, ChangePasswordRequest, CodeRequest, ForgotPasswordRequest,
    LinkAnswer, LoginRequest, MfaStatus, MfaVerifyRequest, PasskeyInfo, PasskeyRegistrationStart,
    ProviderInfo, RecoveryCodes, RegisterRequest, ResetPasswordRequest, Session, SessionInfo,
    SignInMethods, TotpSetup, UpdateUserRequest, User, UserListQuery, UserPage, VerifyEmailRequest,
    WebAuthnJson,
};
use serde::Serialize;
use std::{fmt, marker::PhantomData};

/// The HTTP methods the API uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Patch,
    Delete,
}

impl Method {
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// True when the request's data travels as a JSON body, false when in the query string.
    /// A `DELETE` carries a body when it has data (turning the second factor off takes a
    /// code); without data it sends none.
    pub const fn has_body(self) -> bool {
        matches!(self, Method::Post | Method::Patch | Method::Delete)
    }
}

/// The path is called as it is.
pub enum Fixed {}

/// The path has one `{id}` segment, filled by [`Endpoint::with_id`] before a call.
pub enum ById {}

/// One endpoint: `method` and `path` for the router, `Req` and `Res` for the client.
/// `P` says whether the path has a parameter ([`ById`]) or not ([`Fixed`]), so a path
/// with `{id}` cannot be called unfilled.
pub struct Endpoint<Req, Res, P = Fixed> {
    pub method: Method,
    /// The route as axum 0.8 spells it (`/api/sessions/{id}`).
    pub path: &'static str,
    _types: PhantomData<fn(Req) -> Res>,
    _param: PhantomData<fn() -> P>,
}

// Derives would ask `Req`, `Res` and `P` to be `Clone` and `Debug` themselves.
impl<Req, Res, P> Clone for Endpoint<Req, Res, P> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Req, Res, P> Copy for Endpoint<Req, Res, P> {}

impl<Req, Res, P> fmt::Debug for Endpoint<Req, Res, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method.as_str(), self.path)
    }
}

impl<Req, Res, P> Endpoint<Req, Res, P> {
    const fn new(method: Method, path: &'static str) -> Self {
        Endpoint {
            method,
            path,
            _types: PhantomData,
            _param: PhantomData,
        }
    }
}

impl<Req, Res> Endpoint<Req, Res, ById> {
    /// The path with `{id}` replaced by `id`, percent-encoded, so that no id (`..`, `a/b`,
    /// `x?y`) can reach another route.
    pub fn path_for(self, id: &str) -> String {
        self.path.replacen("{id}", &percent_encode(id), 1)
    }

    /// The endpoint for the resource `id`, ready to call.
    pub fn with_id(self, id: &str) -> Target<Req, Res> {
        Target::new(self.method, self.path_for(id))
    }
}

/// An endpoint with its path filled in: what the client sends a request to.
pub struct Target<Req, Res> {
    method: Method,
    path: String,
    _types: PhantomData<fn(Req) -> Res>,
}

impl<Req, Res> Clone for Target<Req, Res> {
    fn clone(&self) -> Self {
        Target::new(self.method, self.path.clone())
    }
}

impl<Req, Res> fmt::Debug for Target<Req, Res> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method.as_str(), self.path)
    }
}

impl<Req, Res> Target<Req, Res> {
    fn new(method: Method, path: String) -> Self {
        Target {
            method,
            path,
            _types: PhantomData,
        }
    }

    pub fn method(&self) -> Method {
        self.method
    }

    pub fn path(&self) -> &str {
        &self.path
    }
}

/// A request ready for the wire: where it goes and the JSON body, if it has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    pub method: Method,
    /// The path, with the query string for `GET` and `DELETE` requests that carry data.
    pub url: String,
    pub body: Option<String>,
}

impl<Req: Serialize, Res> Target<Req, Res> {
    /// Puts `request` where the method wants it: the JSON body of a `POST` or `PATCH` (so
    /// `()` sends `null`) or of a `DELETE` with data (`()` sends nothing), or the query
    /// string of a `GET` (`()` adds none).
    pub fn encode(&self, request: &Req) -> Result<Encoded, serde_json::Error> {
        let (url, body) = if self.method.has_body() {
            // Written straight to text: a detour through `serde_json::Value` would compile
            // its writer into the WASM for every request type.
            let json = serde_json::to_string(request)?;
            let body = (self.method != Method::Delete || json != "null").then_some(json);
            (self.path.clone(), body)
        } else {
            let query = query_string(&serde_json::to_value(request)?);
            if query.is_empty() {
                (self.path.clone(), None)
            } else {
                (format!("{}?{query}", self.path), None)
            }
        };
        Ok(Encoded {
            method: self.method,
            url,
            body,
        })
    }
}

/// What the client accepts as the first argument of a call: an endpoint without a
/// parameter, or one whose `{id}` was filled ([`Endpoint::with_id`]).
pub trait IntoTarget {
    type Req;
    type Res;
    fn into_target(self) -> Target<Self::Req, Self::Res>;
}

impl<Req, Res> IntoTarget for Endpoint<Req, Res, Fixed> {
    type Req = Req;
    type Res = Res;
    fn into_target(self) -> Target<Req, Res> {
        Target::new(self.method, self.path.to_string())
    }
}

impl<Req, Res> IntoTarget for Target<Req, Res> {
    type Req = Req;
    type Res = Res;
    fn into_target(self) -> Target<Req, Res> {
        self
    }
}

/// An endpoint without its types, for code that goes through all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// The constant's name.
    pub name: &'static str,
    pub method: Method,
    pub path: &'static str,
}

/// Declares each endpoint once, and [`ALL`] from the same lines, so the list cannot miss one.
macro_rules! endpoints {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident: $method:ident $path:literal, $req:ty => $res:ty $(, $param:ident)?;
    )*) => {
        $(
            $(#[doc = $doc])*
            pub const $name: Endpoint<$req, $res $(, $param)?> = Endpoint::new(Method::$method, $path);
        )*

        /// Every endpoint of the API, in the order declared.
        pub const ALL: &[Route] = &[$(
            Route { name: stringify!($name), method: Method::$method, path: $path },
        )*];
    };
}

endpoints! {
    /// A new account, signed in: `Session` and the refresh cookie (201).
    REGISTER: Post "/api/auth/register", RegisterRequest => Session;
    /// Signs in: `Session` and the refresh cookie.
    LOGIN: Post "/api/auth/login", LoginRequest => Session;
    /// Rotates the refresh token of the cookie (or of `Authorization: Bearer`).
    REFRESH: Post "/api/auth/refresh", () => Session;
    /// Ends the session of the refresh token and clears the cookie (204).
    LOGOUT: Post "/api/auth/logout", () => ();
    /// The signed-in person's new password; every other session ends (204).
    CHANGE_PASSWORD: Post "/api/auth/password/change", ChangePasswordRequest => ();
    /// The identity providers people may sign in with (`[{id, name}]`).
    PROVIDERS: Get "/api/auth/providers", () => Vec<ProviderInfo>;
    /// The 6-digit code from the email: the person, now verified.
    VERIFY_EMAIL: Post "/api/auth/verify-email", VerifyEmailRequest => User;
    /// Mails a new verification code (202).
    RESEND_VERIFICATION: Post "/api/auth/verify-email/resend", () => ();
    /// Mails a reset link when the address has an account; answers the same either way (202).
    FORGOT_PASSWORD: Post "/api/auth/password/forgot", ForgotPasswordRequest => ();
    /// Sets a new password with the token of the link (204).
    RESET_PASSWORD: Post "/api/auth/password/reset", ResetPasswordRequest => ();
    /// The signed-in person.
    ME: Get "/api/me", () => User;
    /// A start URL with a one-time ticket that links the provider `{id}`'s identity to the
    /// signed-in person (the browser navigates to it).
    LINK_IDENTITY: Post "/api/auth/oidc/{id}/link", () => LinkAnswer, ById;
    /// How the person can sign in: a password or not, and the linked identity providers.
    MY_SIGN_IN_METHODS: Get "/api/me/identities", () => SignInMethods;
    /// Unlinks the person's identity at the provider `{id}` (204); never their last way in.
    UNLINK_IDENTITY: Delete "/api/me/identities/{id}", () => (), ById;
    /// The person's live sessions, most recently used first.
    LIST_SESSIONS: Get "/api/sessions", () => Vec<SessionInfo>;
    /// Ends every session of the person but the caller's (204).
    REVOKE_OTHER_SESSIONS: Post "/api/sessions/revoke-others", () => ();
    /// Ends one session of the person (204).
    REVOKE_SESSION: Delete "/api/sessions/{id}", () => (), ById;
    /// Admins: one page of people, searched by email and name.
    ADMIN_LIST_USERS: Get "/api/admin/users", UserListQuery => UserPage;
    /// Admins: a person's role or access.
    ADMIN_UPDATE_USER: Patch "/api/admin/users/{id}", UpdateUserRequest => AdminUser, ById;
    /// Admins: ends every session and access token of a person (204).
    ADMIN_REVOKE_USER_SESSIONS: Post "/api/admin/users/{id}/revoke-sessions", () => (), ById;
    /// Admins: the audit log, newest first.
    ADMIN_AUDIT_LOG: Get "/api/admin/audit", AuditQuery => Vec<AuditEntry>;
    /// Admins: turns a person's second factor off (204).
    ADMIN_RESET_MFA: Post "/api/admin/users/{id}/reset-mfa", () => (), ById;
    /// The second step of a sign-in: `Session` and the refresh cookie, as login gives.
    MFA_VERIFY: Post "/api/auth/mfa/verify", MfaVerifyRequest => Session;
    /// Whether the person's second factor is on, and their recovery codes left.
    MFA_STATUS: Get "/api/me/mfa", () => MfaStatus;
    /// A pending authenticator secret (replacing an earlier pending one).
    TOTP_SETUP: Post "/api/me/mfa/totp/setup", () => TotpSetup;
    /// Confirms the pending secret with a first code: the second factor is on, and these
    /// are its recovery codes.
    TOTP_CONFIRM: Post "/api/me/mfa/totp/confirm", CodeRequest => RecoveryCodes;
    /// Turns the second factor off with a current code or a recovery code (204).
    TOTP_DISABLE: Delete "/api/me/mfa/totp", CodeRequest => ();
    /// A new set of recovery codes (the old set dies), with a current code or a recovery
    /// code.
    NEW_RECOVERY_CODES: Post "/api/me/mfa/recovery-codes", CodeRequest => RecoveryCodes;
    /// WebAuthn creation options for a new passkey of the person.
    PASSKEY_REGISTER_START: Post "/api/me/passkeys/register/start", PasskeyRegistrationStart => WebAuthnJson;
    /// The authenticator's answer: the passkey is kept (201).
    PASSKEY_REGISTER_FINISH: Post "/api/me/passkeys/register/finish", WebAuthnJson => PasskeyInfo;
    /// The person's passkeys.
    MY_PASSKEYS: Get "/api/me/passkeys", () => Vec<PasskeyInfo>;
    /// Removes one of the person's passkeys (204).
    DELETE_PASSKEY: Delete "/api/me/passkeys/{id}", () => (), ById;
    /// WebAuthn request options for signing in with a passkey.
    PASSKEY_SIGN_IN_START: Post "/api/auth/passkey/start", () => WebAuthnJson;
    /// The authenticator's answer: `Session` and the refresh cookie, as login gives.
    PASSKEY_SIGN_IN_FINISH: Post "/api/auth/passkey/finish", WebAuthnJson => Session;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_endpoint_is_listed_once_under_api() {
        assert_eq!(ALL.len(), 34);
        let mut names = HashSet::new();
        let mut routes = HashSet::new();
        for route in ALL {
            assert!(names.insert(route.name), "{} declared twice", route.name);
            assert!(
                routes.insert((route.method, route.path)),
                "{} {} declared twice",
                route.method.as_str(),
                route.path
            );
            assert!(
                route.path.starts_with("/api/"),
                "{}: {}",
                route.name,
                route.path
            );
            assert!(!route.path.ends_with('/'), "{}: {}", route.name, route.path);
            assert!(!route.path.contains("//"), "{}: {}", route.name, route.path);
            // axum 0.8 syntax, and only the one parameter `with_id` fills.
            assert!(!route.path.contains(':'), "{}: {}", route.name, route.path);
            let params = route.path.matches('{').count();
            assert_eq!(params, route.path.matches("{id}").count(), "{}", route.name);
            assert!(params <= 1, "{}", route.name);
        }
    }

    #[test]
    fn the_list_agrees_with_the_constants() {
        let find = |name: &str| {
            ALL.iter()
                .find(|r| r.name == name)
                .map(|r| (r.method, r.path))
        };
        assert_eq!(find("LOGIN"), Some((LOGIN.method, LOGIN.path)));
        assert_eq!(
            find("REVOKE_SESSION"),
            Some((REVOKE_SESSION.method, REVOKE_SESSION.path))
        );
        assert_eq!(
            find("ADMIN_UPDATE_USER"),
            Some((ADMIN_UPDATE_USER.method, ADMIN_UPDATE_USER.path))
        );
        // Exactly the endpoints typed `ById` have `{id}` in their path.
        let by_id: HashSet<&str> = ALL
            .iter()
            .filter(|r| r.path.contains("{id}"))
            .map(|r| r.name)
            .collect();
        assert_eq!(
            by_id,
            HashSet::from([
                "REVOKE_SESSION",
                "ADMIN_UPDATE_USER",
                "ADMIN_REVOKE_USER_SESSIONS",
                "LINK_IDENTITY",
                "UNLINK_IDENTITY",
                "ADMIN_RESET_MFA",
                "DELETE_PASSKEY"
            ])
        );
    }

    #[test]
    fn ids_are_filled_percent_encoded() {
        assert_eq!(
            REVOKE_SESSION.path_for("3f2b9c1e-0000-4000-8000-000000000001"),
            "/api/sessions/3f2b9c1e-0000-4000-8000-000000000001"
        );
        assert_eq!(
            ADMIN_REVOKE_USER_SESSIONS.path_for("../me?x=1"),
            "/api/admin/users/..%2Fme%3Fx%3D1/revoke-sessions"
        );
        let target = ADMIN_UPDATE_USER.with_id("a b");
        assert_eq!(target.method(), Method::Patch);
        assert_eq!(target.path(), "/api/admin/users/a%20b");
    }

    #[test]
    fn bodies_go_as_json_and_queries_in_the_url() {
        let login = LOGIN.into_target().encode(&LoginRequest {
            email: "ada@example.com".into(),
            password: "correct horse".into(),
        });
        assert_eq!(
            login.ok(),
            Some(Encoded {
                method: Method::Post,
                url: "/api/auth/login".into(),
                body: Some(r#"{"email":"ada@example.com","password":"correct horse"}"#.into()),
            })
        );
        // A POST without data still sends a JSON body.
        let others = REVOKE_OTHER_SESSIONS.into_target().encode(&());
        assert_eq!(others.ok().and_then(|e| e.body).as_deref(), Some("null"));
        let me = ME.into_target().encode(&());
        assert_eq!(
            me.ok(),
            Some(Encoded {
                method: Method::Get,
                url: "/api/me".into(),
                body: None,
            })
        );
        let delete = REVOKE_SESSION.with_id("s1").encode(&());
        assert_eq!(
            delete.ok().map(|e| (e.url, e.body)),
            Some(("/api/sessions/s1".into(), None))
        );
        let off = TOTP_DISABLE.into_target().encode(&CodeRequest {
            code: "123456".into(),
        });
        assert_eq!(
            off.ok().map(|e| (e.url, e.body)),
            Some((
                "/api/me/mfa/totp".into(),
                Some(r#"{"code":"123456"}"#.into())
            ))
        );
        let users = ADMIN_LIST_USERS.into_target().encode(&UserListQuery {
            page: Some(2),
            per_page: Some(20),
            q: Some("zoë & co".into()),
        });
        assert_eq!(
            users.ok().map(|e| (e.url, e.body)),
            Some((
                "/api/admin/users?page=2&per_page=20&q=zo%C3%AB%20%26%20co".into(),
                None
            ))
        );
        let audit = ADMIN_AUDIT_LOG.into_target().encode(&AuditQuery {
            page: None,
            per_page: Some(50),
        });
        assert_eq!(
            audit.ok().map(|e| e.url).as_deref(),
            Some("/api/admin/audit?per_page=50")
        );
    }

    #[test]
    fn methods_say_where_the_data_goes() {
        assert_eq!(
            [Method::Get, Method::Post, Method::Patch, Method::Delete].map(Method::as_str),
            ["GET", "POST", "PATCH", "DELETE"]
        );
        assert!(Method::Post.has_body() && Method::Patch.has_body());
        assert!(Method::Delete.has_body() && !Method::Get.has_body());
    }
}
