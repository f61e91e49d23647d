//! The OpenAPI 3.1 document of the HTTP API: served at `GET /api/openapi.json`, kept in
//! the repository as `docs/openapi.json` (a test fails when the two differ) and printed by
//! `server openapi`.
//!
//! It is built from the endpoint table the router and the browser client share
//! (`api::endpoints`): each endpoint's method, path and body types come from there,
//! and their schemas from the API types themselves (utoipa's derives, compiled for the
//! server only, so the WASM bundle carries none of it). What the table cannot know is said
//! here, one line an endpoint: who may call it, what a success answers, and which error
//! codes it answers besides those every endpoint of its kind can answer
//! ([`About::all_errors`]). Each code is documented under the status it is answered with
//! ([`status_of`]), so the document cannot give a code a wrong status.

use crate::error::status_of;
use api::{
    endpoints::{self as e, Endpoint},
    AdminUser, AuditEntry, AuditQuery, ChangePasswordRequest, CodeRequest, ErrorCode,
    ForgotPasswordRequest, Health, LinkAnswer, LoginRequest, MfaStatus, MfaVerifyRequest,
    PasskeyInfo, PasskeyRegistrationStart, ProviderInfo, RecoveryCodes, RegisterRequest,
    ResetPasswordRequest, Session, SessionInfo, SignInMethods, TotpSetup, UpdateUserRequest, User,
    UserListQuery, UserPage, VerifyEmailRequest, WebAuthnJson,
};
use std::collections::BTreeMap;
use utoipa::{
    openapi::{
        header::HeaderBuilder,
        path::{HttpMethod, Operation, OperationBuilder, Parameter, ParameterBuilder, ParameterIn},
        request_body::RequestBodyBuilder,
        response::{Response, ResponseBuilder},
        schema::{AllOfBuilder, ArrayBuilder, ObjectBuilder, Schema, Type},
        security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        },
        ComponentsBuilder, Content, InfoBuilder, OpenApi, OpenApiBuilder, PathItem, Paths, Ref,
        RefOr, Required,
    },
    IntoParams, ToSchema,
};
use ErrorCode::*;

/// Where the document is served.
pub const PATH: &str = "/api/openapi.json";

/// The document, the same on every server whatever its settings.
pub fn document() -> OpenApi {
    let mut doc = Document::default();
    doc.endpoint(
        e::REGISTER,
        About::anyone("Creates an account and signs it in", 201)
            .errors(&[ValidationFailed, EmailTaken, RateLimited])
            .sets_cookie()
            .may_answer_the_refresh_token(),
    );
    doc.endpoint(
        e::LOGIN,
        About::anyone("Signs in with an email and a password", 200)
            .errors(&[
                ValidationFailed,
                InvalidCredentials,
                AccountDisabled,
                RateLimited,
                MfaRequired,
            ])
            .sets_cookie()
            .may_answer_the_refresh_token(),
    );
    doc.endpoint(
        e::REFRESH,
        About::refresh("Rotates the refresh token: a new access token", 200)
            .errors(&[
                RefreshMissing,
                RefreshInvalid,
                RefreshExpired,
                RefreshReused,
                OriginForbidden,
                AccountDisabled,
            ])
            .sets_cookie()
            .may_answer_the_refresh_token(),
    );
    doc.endpoint(
        e::LOGOUT,
        About::refresh("Ends the refresh token's session; idempotent", 204)
            .errors(&[OriginForbidden])
            .sets_cookie(),
    );
    doc.endpoint(
        e::CHANGE_PASSWORD,
        About::person("Changes the password; every other session ends", 204).errors(&[
            ValidationFailed,
            InvalidCredentials,
            PasswordNotSet,
            RateLimited,
            EmailUnverified,
        ]),
    );
    doc.endpoint(
        e::PROVIDERS,
        About::anyone("The identity providers people may sign in with", 200),
    );
    doc.endpoint(
        e::VERIFY_EMAIL,
        About::person("Proves the email with the mailed 6-digit code", 200).errors(&[
            ValidationFailed,
            CodeInvalid,
            CodeExpired,
            CodeAttemptsExceeded,
            RateLimited,
        ]),
    );
    doc.endpoint(
        e::RESEND_VERIFICATION,
        About::person("Mails a new verification code", 202).errors(&[AlreadyVerified, RateLimited]),
    );
    doc.endpoint(
        e::FORGOT_PASSWORD,
        About::anyone("Mails a reset link if the address has an account", 202)
            .errors(&[ValidationFailed, RateLimited]),
    );
    doc.endpoint(
        e::RESET_PASSWORD,
        About::anyone("Sets a new password with the link's token", 204).errors(&[
            ValidationFailed,
            ResetTokenInvalid,
            ResetTokenExpired,
        ]),
    );
    doc.endpoint(e::ME, About::person("The signed-in person", 200));
    doc.endpoint(
        e::LINK_IDENTITY,
        About::person("Where to go to link the provider's identity", 200)
            .errors(&[EmailUnverified]),
    );
    doc.endpoint(
        e::MY_SIGN_IN_METHODS,
        About::person("How the person can sign in", 200).errors(&[EmailUnverified]),
    );
    doc.endpoint(
        e::UNLINK_IDENTITY,
        About::person("Unlinks the provider's identity", 204)
            .errors(&[LastSignInMethod, EmailUnverified]),
    );
    doc.endpoint(
        e::LIST_SESSIONS,
        About::person("The person's live sessions", 200).errors(&[EmailUnverified]),
    );
    doc.endpoint(
        e::REVOKE_OTHER_SESSIONS,
        About::person("Ends every other session of the person", 204).errors(&[EmailUnverified]),
    );
    doc.endpoint(
        e::REVOKE_SESSION,
        About::person("Ends one session of the person", 204).errors(&[EmailUnverified]),
    );
    doc.endpoint(
        e::ADMIN_LIST_USERS,
        About::admin("One page of people", 200).errors(&[ValidationFailed, EmailUnverified]),
    );
    doc.endpoint(
        e::ADMIN_UPDATE_USER,
        About::admin("Changes a person's role or access", 200).errors(&[
            ValidationFailed,
            LastAdmin,
            EmailUnverified,
        ]),
    );
    doc.endpoint(
        e::ADMIN_REVOKE_USER_SESSIONS,
        About::admin("Ends every session of a person", 204).errors(&[EmailUnverified]),
    );
    doc.endpoint(
        e::ADMIN_AUDIT_LOG,
        About::admin("The audit log, newest first", 200)
            .errors(&[ValidationFailed, EmailUnverified]),
    );
    doc.endpoint(
        e::ADMIN_RESET_MFA,
        About::admin("Turns a person's second factor off", 204).errors(&[EmailUnverified]),
    );
    doc.endpoint(
        e::MFA_VERIFY,
        About::anyone("The second step of a sign-in: a new session", 200)
            .errors(&[
                ValidationFailed,
                CodeInvalid,
                MfaTokenInvalid,
                AccountDisabled,
                RateLimited,
            ])
            .sets_cookie()
            .may_answer_the_refresh_token(),
    );
    doc.endpoint(
        e::MFA_STATUS,
        About::person("Whether the second factor is on", 200).errors(&[EmailUnverified]),
    );
    doc.endpoint(
        e::TOTP_SETUP,
        About::person("A pending authenticator secret and its QR code", 200)
            .errors(&[MfaAlreadyEnabled, EmailUnverified]),
    );
    doc.endpoint(
        e::TOTP_CONFIRM,
        About::person("Turns the second factor on; its recovery codes, once", 200).errors(&[
            ValidationFailed,
            CodeInvalid,
            MfaNotPending,
            RateLimited,
            EmailUnverified,
        ]),
    );
    doc.endpoint(
        e::TOTP_DISABLE,
        About::person("Turns the second factor off", 204).errors(&[
            ValidationFailed,
            CodeInvalid,
            RateLimited,
            EmailUnverified,
        ]),
    );
    doc.endpoint(
        e::NEW_RECOVERY_CODES,
        About::person("A new set of recovery codes; the old set dies", 200).errors(&[
            ValidationFailed,
            CodeInvalid,
            RateLimited,
            EmailUnverified,
        ]),
    );
    doc.endpoint(
        e::PASSKEY_REGISTER_START,
        About::person("WebAuthn creation options for a new passkey", 200).errors(&[
            ValidationFailed,
            PasskeyInvalid,
            RateLimited,
            EmailUnverified,
        ]),
    );
    doc.endpoint(
        e::PASSKEY_REGISTER_FINISH,
        About::person("Keeps the new passkey", 201).errors(&[PasskeyInvalid, EmailUnverified]),
    );
    doc.endpoint(
        e::MY_PASSKEYS,
        About::person("The person's passkeys", 200).errors(&[EmailUnverified]),
    );
    doc.endpoint(
        e::DELETE_PASSKEY,
        About::person("Removes one of the person's passkeys", 204).errors(&[EmailUnverified]),
    );
    doc.endpoint(
        e::PASSKEY_SIGN_IN_START,
        About::anyone(
            "WebAuthn request options for signing in with a passkey",
            200,
        )
        .errors(&[PasskeyInvalid, RateLimited])
        .answering_401(&[PasskeyInvalid]),
    );
    doc.endpoint(
        e::PASSKEY_SIGN_IN_FINISH,
        About::anyone("Signs in with a passkey: a new session", 200)
            .errors(&[PasskeyInvalid, AccountDisabled])
            .answering_401(&[PasskeyInvalid])
            .sets_cookie()
            .may_answer_the_refresh_token(),
    );
    doc.browser_routes();
    doc.plain_routes();
    doc.finish()
}

/// The document as the server serves it and the repository keeps it (`docs/openapi.json`).
pub fn json() -> String {
    // Serialising utoipa's own types cannot fail; an empty body would fail the file's test.
    let mut text = serde_json::to_string_pretty(&document()).unwrap_or_default();
    text.push('\n');
    text
}

/// Who may call an endpoint.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anyone,
    /// The holder of a refresh token: the cookie, or `Authorization: Bearer`.
    RefreshToken,
    /// A person: their access token as `Authorization: Bearer`.
    Person,
    /// An admin's access token.
    Admin,
}

/// What the document says of an endpoint beyond its method, path and types.
struct About {
    summary: &'static str,
    caller: Caller,
    success: u16,
    errors: &'static [ErrorCode],
    sets_cookie: bool,
    refresh_token_in_body: bool,
    /// Codes this endpoint answers as 401 rather than with their usual status.
    as_401: &'static [ErrorCode],
}

impl About {
    fn new(caller: Caller, summary: &'static str, success: u16) -> About {
        About {
            summary,
            caller,
            success,
            errors: &[],
            sets_cookie: false,
            refresh_token_in_body: false,
            as_401: &[],
        }
    }
    fn anyone(summary: &'static str, success: u16) -> About {
        About::new(Caller::Anyone, summary, success)
    }
    fn refresh(summary: &'static str, success: u16) -> About {
        About::new(Caller::RefreshToken, summary, success)
    }
    fn person(summary: &'static str, success: u16) -> About {
        About::new(Caller::Person, summary, success)
    }
    fn admin(summary: &'static str, success: u16) -> About {
        About::new(Caller::Admin, summary, success)
    }
    /// Its `codes` that it answers as 401 (a sign-in refused).
    fn answering_401(mut self, codes: &'static [ErrorCode]) -> About {
        self.as_401 = codes;
        self
    }
    /// The codes this endpoint answers itself.
    fn errors(mut self, errors: &'static [ErrorCode]) -> About {
        self.errors = errors;
        self
    }
    /// Non-browser clients may ask for the refresh token in the body instead
    /// (`X-Refresh-Token-Delivery: body`).
    fn may_answer_the_refresh_token(mut self) -> About {
        self.refresh_token_in_body = true;
        self
    }
    /// A success sets (or, for logout, clears) the refresh cookie.
    fn sets_cookie(mut self) -> About {
        self.sets_cookie = true;
        self
    }

    /// Its own codes, and those any endpoint like it can answer: the access token's
    /// checks, a body that is not the JSON asked for, a path id that names nothing, and
    /// 503 when the database is out of reach or busy, or the request ran out of time.
    fn all_errors(&self, has_body: bool, has_id: bool) -> Vec<ErrorCode> {
        let mut codes = self.errors.to_vec();
        if matches!(self.caller, Caller::Person | Caller::Admin) {
            codes.extend([TokenMissing, TokenInvalid, TokenExpired]);
        }
        if self.caller == Caller::Admin {
            codes.push(Forbidden);
        }
        if has_body {
            codes.extend([InvalidJson, PayloadTooLarge]);
        }
        if has_id {
            codes.push(NotFound);
        }
        codes.extend([Unavailable, Overloaded]);
        codes
    }
}

/// A request or answer type as the document shows it.
trait Payload {
    /// Its JSON schema, the named schemas it uses put in `schemas`; `None`: no body.
    fn schema(_schemas: &mut Schemas) -> Option<RefOr<Schema>> {
        None
    }
    /// The query parameters it stands for, in a `GET` or `DELETE` request.
    fn query() -> Vec<Parameter> {
        Vec::new()
    }
}

impl Payload for () {}

impl<T: Payload> Payload for Vec<T> {
    fn schema(schemas: &mut Schemas) -> Option<RefOr<Schema>> {
        let item = T::schema(schemas)?;
        Some(ArrayBuilder::new().items(item).build().into())
    }
}

macro_rules! json_payloads {
    ($($t:ty),* $(,)?) => {$(
        impl Payload for $t {
            fn schema(schemas: &mut Schemas) -> Option<RefOr<Schema>> {
                Some(schemas.named::<$t>())
            }
        }
    )*};
}

json_payloads!(
    User,
    Session,
    RegisterRequest,
    LoginRequest,
    ChangePasswordRequest,
    ProviderInfo,
    VerifyEmailRequest,
    ForgotPasswordRequest,
    ResetPasswordRequest,
    LinkAnswer,
    SignInMethods,
    TotpSetup,
    CodeRequest,
    RecoveryCodes,
    MfaStatus,
    MfaVerifyRequest,
    WebAuthnJson,
    PasskeyRegistrationStart,
    PasskeyInfo,
    SessionInfo,
    UserPage,
    AdminUser,
    UpdateUserRequest,
    AuditEntry,
    Health,
);

macro_rules! query_payloads {
    ($($t:ty),* $(,)?) => {$(
        impl Payload for $t {
            fn query() -> Vec<Parameter> {
                <$t as IntoParams>::into_params(|| Some(ParameterIn::Query))
            }
        }
    )*};
}

query_payloads!(UserListQuery, AuditQuery);

/// The named schemas the document refers to, under `components.schemas`.
#[derive(Default)]
struct Schemas(Vec<(String, RefOr<Schema>)>);

impl Schemas {
    fn named<T: ToSchema>(&mut self) -> RefOr<Schema> {
        T::schemas(&mut self.0);
        self.0.push((T::name().into_owned(), T::schema()));
        Ref::from_schema_name(T::name()).into()
    }
}

#[derive(Default)]
struct Document {
    paths: BTreeMap<String, PathItem>,
    schemas: Schemas,
}

impl Document {
    /// An endpoint of the shared table.
    fn endpoint<Req: Payload, Res: Payload, P>(
        &mut self,
        endpoint: Endpoint<Req, Res, P>,
        about: About,
    ) {
        let has_body = endpoint.method.has_body();
        let body = if has_body {
            Req::schema(&mut self.schemas)
        } else {
            None
        };
        let mut parameters = if has_body { Vec::new() } else { Req::query() };
        let has_id = endpoint.path.contains("{id}");
        if has_id {
            parameters.push(path_id());
        }
        if about.refresh_token_in_body {
            parameters.push(delivery_header());
        }
        let mut success = ResponseBuilder::new().description(success_text(about.success));
        if let Some(schema) = Res::schema(&mut self.schemas) {
            success = success.content("application/json", Content::new(Some(schema)));
        }
        if about.sets_cookie {
            success = success.header(
                "Set-Cookie",
                header("The refresh cookie (HttpOnly), set or cleared"),
            );
        }
        let mut operation = OperationBuilder::new()
            .summary(Some(about.summary))
            .operation_id(Some(operation_id(endpoint.path, endpoint.method.as_str())))
            .securities(Some(security(about.caller)))
            .parameters(Some(parameters))
            .response(about.success.to_string(), success.build());
        let errors = about.all_errors(body.is_some(), has_id);
        let as_401 = about.as_401;
        if let Some(schema) = body {
            operation = operation.request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .content("application/json", Content::new(Some(schema)))
                    .build(),
            ));
        }
        self.add(
            endpoint.method.as_str(),
            endpoint.path,
            with_errors_as_401(operation, &errors, as_401),
        );
    }

    /// The identity-provider routes a browser navigates to: they answer with redirects.
    fn browser_routes(&mut self) {
        use crate::routes::oidc::{CALLBACK, START};
        let redirect = |text: &str| {
            ResponseBuilder::new()
                .description(text)
                .header("Location", header("Where the browser goes next"))
                .build()
        };
        let start = OperationBuilder::new()
            .summary(Some(
                "Begins signing in (or linking, with `link`) at the provider",
            ))
            .operation_id(Some("oidc_start"))
            .parameters(Some([
                path_id(),
                query("next", "A same-site path to end at once signed in"),
                query("link", "A one-time ticket from the link endpoint"),
            ]))
            .response(
                "303",
                redirect("To the provider's sign-in page; sets the flow cookie"),
            );
        self.add(
            "GET",
            START,
            with_errors(
                start,
                &[
                    NotFound,
                    ValidationFailed,
                    RateLimited,
                    OidcStateInvalid,
                    ProviderUnavailable,
                    Unavailable,
                    Overloaded,
                ],
            ),
        );
        let callback = OperationBuilder::new()
            .summary(Some("Where the provider sends the browser back"))
            .operation_id(Some("oidc_callback"))
            .parameters(Some([
                path_id(),
                query("code", "The provider's authorization code"),
                query("state", "The flow's state"),
                query("error", "The provider's error, when it did not sign the person in"),
            ]))
            .response(
                "303",
                redirect("To the page asked for, signed in; or to `/login?error=<code>` (or `/account?error=<code>` when linking)"),
            );
        self.add(
            "GET",
            CALLBACK,
            with_errors(callback, &[NotFound, ValidationFailed, Unavailable]),
        );
        let openapi = OperationBuilder::new()
            .summary(Some("This document"))
            .operation_id(Some("openapi"))
            .response(
                "200",
                ResponseBuilder::new()
                    .description("OpenAPI 3.1")
                    .content(
                        "application/json",
                        Content::new(Some(ObjectBuilder::new().build())),
                    )
                    .build(),
            );
        self.add("GET", PATH, openapi);
    }

    /// The routes outside `/api` that other clients rely on.
    fn plain_routes(&mut self) {
        let health = self.schemas.named::<Health>();
        let json = |text: &str, schema: RefOr<Schema>| {
            ResponseBuilder::new()
                .description(text)
                .content("application/json", Content::new(Some(schema)))
                .build()
        };
        let healthz = OperationBuilder::new()
            .summary(Some("The process answers (no database touched)"))
            .operation_id(Some("healthz"))
            .response("200", json("Alive", health.clone()));
        self.add("GET", "/healthz", healthz);
        let readyz = OperationBuilder::new()
            .summary(Some("The database answers"))
            .operation_id(Some("readyz"))
            .response("200", json("Ready", health))
            .response("503", error_response(503, &[Unavailable.as_str()]));
        self.add("GET", "/readyz", readyz);
        let key = ObjectBuilder::new()
            .property("kty", ObjectBuilder::new().schema_type(Type::String))
            .property("crv", ObjectBuilder::new().schema_type(Type::String))
            .property("x", ObjectBuilder::new().schema_type(Type::String))
            .property("kid", ObjectBuilder::new().schema_type(Type::String))
            .property("alg", ObjectBuilder::new().schema_type(Type::String))
            .property("use", ObjectBuilder::new().schema_type(Type::String))
            .required("kty")
            .required("kid");
        let jwks = ObjectBuilder::new()
            .property("keys", ArrayBuilder::new().items(key))
            .required("keys")
            .build();
        let jwks = OperationBuilder::new()
            .summary(Some("The public keys that verify access tokens (JWKS)"))
            .operation_id(Some("jwks"))
            .response("200", json("Every published key", jwks.into()));
        self.add("GET", "/.well-known/jwks.json", jwks);
    }

    fn add(&mut self, method: &str, path: &str, operation: OperationBuilder) {
        let method = match method {
            "GET" => HttpMethod::Get,
            "POST" => HttpMethod::Post,
            "PATCH" => HttpMethod::Patch,
            _ => HttpMethod::Delete,
        };
        let operation: Operation = operation.build();
        self.paths
            .entry(path.to_string())
            .or_default()
            .merge_operations(PathItem::new(method, operation));
    }

    fn finish(self) -> OpenApi {
        let mut paths = Paths::new();
        for (path, item) in self.paths {
            paths.paths.insert(path, item);
        }
        let bearer = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some(
                "An access token (or, on refresh and logout, a refresh token)",
            ))
            .build();
        let cookie = ApiKey::Cookie(ApiKeyValue::with_description(
            "refresh_token",
            "The HTTP-only refresh cookie (path /api/auth)",
        ));
        OpenApiBuilder::new()
            .info(
                InfoBuilder::new()
                    .title("jwt-auth")
                    .version(env!("CARGO_PKG_VERSION"))
                    .description(Some(
                        "Browser authentication with short-lived access tokens and rotating refresh tokens.",
                    ))
                    .build(),
            )
            .paths(paths)
            .components(Some(
                ComponentsBuilder::new()
                    .schemas_from_iter(self.schemas.0)
                    .schema("Error", error_body())
                    .security_scheme("access_token", SecurityScheme::Http(bearer))
                    .security_scheme("refresh_cookie", SecurityScheme::ApiKey(cookie))
                    .build(),
            ))
            .build()
    }
}

/// `register` for `/api/auth/register`, `revoke_sessions_id` for `DELETE /api/sessions/{id}`.
fn operation_id(path: &str, method: &str) -> String {
    let words: Vec<&str> = path
        .trim_start_matches("/api/")
        .split(['/', '-'])
        .filter(|w| !w.is_empty() && *w != "auth")
        .map(|w| w.trim_matches(['{', '}']))
        .collect();
    format!("{}_{}", method.to_ascii_lowercase(), words.join("_"))
}

fn security(caller: Caller) -> Vec<SecurityRequirement> {
    let needs = |scheme: &str| SecurityRequirement::new::<_, _, &str>(scheme, []);
    match caller {
        Caller::Anyone => Vec::new(),
        // Without one, refresh answers `refresh_missing` and logout 204.
        Caller::RefreshToken => vec![
            needs("refresh_cookie"),
            needs("access_token"),
            SecurityRequirement::default(),
        ],
        Caller::Person | Caller::Admin => vec![needs("access_token")],
    }
}

fn success_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted: the work goes on in the background",
        _ => "Done; no body",
    }
}

fn header(text: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .description(Some(text))
        .build()
}

fn delivery_header() -> Parameter {
    ParameterBuilder::new()
        .name("X-Refresh-Token-Delivery")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "`body`: the refresh token in the answer's `refresh_token` instead of the cookie \
             (non-browser clients; on refresh only with `Authorization: Bearer`)",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["body"])),
        ))
        .build()
}

fn path_id() -> Parameter {
    ParameterBuilder::new()
        .name("id")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

fn query(name: &str, text: &str) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(text))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

/// One response a status: the contract's error body, its `code` one of those answered
/// with that status.
fn with_errors(operation: OperationBuilder, codes: &[ErrorCode]) -> OperationBuilder {
    with_errors_as_401(operation, codes, &[])
}

/// [`with_errors`], with `as_401` answered as 401 here whatever their usual status (a
/// passkey that signs nobody in).
fn with_errors_as_401(
    mut operation: OperationBuilder,
    codes: &[ErrorCode],
    as_401: &[ErrorCode],
) -> OperationBuilder {
    let mut by_status: BTreeMap<u16, Vec<&'static str>> = BTreeMap::new();
    for code in codes {
        let status = if as_401.contains(code) {
            401
        } else {
            status_of(*code).as_u16()
        };
        let listed = by_status.entry(status).or_default();
        if !listed.contains(&code.as_str()) {
            listed.push(code.as_str());
        }
    }
    for (status, codes) in by_status {
        operation = operation.response(status.to_string(), error_response(status, &codes));
    }
    operation
}

/// The contract's error body: `{"error": {"code", "message", "fields"?}}`, and with
/// `mfa_required` its `mfa_token` and `methods`.
fn error_body() -> Schema {
    let text = || ObjectBuilder::new().schema_type(Type::String);
    let detail = ObjectBuilder::new()
        .property("code", text())
        .required("code")
        .property("message", text().description(Some("For people")))
        .required("message")
        .property(
            "fields",
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .additional_properties(Some(text()))
                .description(Some("With `validation_failed` only: each field's problem")),
        )
        .property(
            "mfa_token",
            text().description(Some(
                "With `mfa_required` only: the single-use, five-minute token of the second step",
            )),
        )
        .property(
            "methods",
            ArrayBuilder::new().items(text()).description(Some(
                "With `mfa_required` only: `totp`, `recovery_code`, `passkey`",
            )),
        );
    ObjectBuilder::new()
        .property("error", detail)
        .required("error")
        .build()
        .into()
}

/// The error body with its `code` one of `codes`.
fn error_response(status: u16, codes: &[&'static str]) -> Response {
    let code = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(codes.iter().copied()));
    let these_codes =
        ObjectBuilder::new().property("error", ObjectBuilder::new().property("code", code));
    let body = AllOfBuilder::new()
        .item(Ref::from_schema_name("Error"))
        .item(these_codes);
    let described: Vec<String> = codes.iter().map(|c| format!("`{c}`")).collect();
    let mut response = ResponseBuilder::new()
        .description(described.join(", "))
        .content(
            "application/json",
            Content::new(Some(Schema::AllOf(body.build()))),
        );
    if status == 401 {
        response = response.header("WWW-Authenticate", header("RFC 6750's Bearer challenge"));
    }
    if status == 429 || status == 503 {
        response = response.header("Retry-After", header("Seconds to wait before trying again"));
    }
    response.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_of_the_table_is_documented_with_its_method() {
        let doc = serde_json::to_value(document()).unwrap_or_default();
        for route in e::ALL {
            let operation = &doc["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
            assert!(
                operation.is_object(),
                "{} {} missing",
                route.method.as_str(),
                route.path
            );
        }
    }

    #[test]
    fn codes_sit_under_their_own_status() {
        let doc = serde_json::to_value(document()).unwrap_or_default();
        let login = &doc["paths"]["/api/auth/login"]["post"]["responses"];
        let codes = |status: &str| {
            login[status]["content"]["application/json"]["schema"]["allOf"][1]["properties"]
                ["error"]["properties"]["code"]["enum"]
                .clone()
        };
        assert_eq!(
            codes("401"),
            serde_json::json!(["invalid_credentials", "mfa_required"])
        );
        assert_eq!(
            codes("400"),
            serde_json::json!(["validation_failed", "invalid_json"])
        );
        assert_eq!(codes("403"), serde_json::json!(["account_disabled"]));
        assert_eq!(
            codes("503"),
            serde_json::json!(["unavailable", "overloaded"])
        );
        assert_eq!(doc["openapi"], "3.1.0");
    }

    /// The copy in the repository is what clients read without running the server.
    #[test]
    fn the_repository_keeps_the_document_the_code_makes() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
        let kept = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            kept == json(),
            "docs/openapi.json is not the document the code makes; write it anew with \
             `cargo run --bin server -- openapi > docs/openapi.json`"
        );
    }

    #[test]
    fn operation_ids_are_unique() {
        let doc = serde_json::to_value(document()).unwrap_or_default();
        let mut seen = std::collections::HashSet::new();
        for (_, item) in doc["paths"].as_object().into_iter().flatten() {
            for (_, operation) in item.as_object().into_iter().flatten() {
                let id = operation["operationId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                assert!(seen.insert(id.clone()), "{id} twice");
            }
        }
        assert_eq!(
            operation_id("/api/sessions/{id}", "DELETE"),
            "delete_sessions_id"
        );
    }
}
