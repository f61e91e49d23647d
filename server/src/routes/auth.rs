//! `/api/auth/*`: register, login, refresh, logout.

use crate::{
    auth::{
        cookie, csrf,
        extract::{bearer, AuthUser},
        password::Verified,
        refresh::Policy,
        session::{self, ClientInfo, Issued, Lifetimes, RefreshFailure},
        throttle, tokens, validate,
    },
    db::{
        audit,
        users::{self, email_key, InsertUserError, NewUser, UserRow},
    },
    error::{ApiError, ApiJson},
    state::AppState,
};
use app::api::{ChangePasswordRequest, LoginRequest, RegisterRequest, Role, Session};
use axum::{
    extract::{ConnectInfo, State},
    http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use secrecy::SecretString;
use std::net::SocketAddr;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/register", post(register))
        .route("/api/auth/login", post(login))
        .route("/api/auth/refresh", post(refresh))
        .route("/api/auth/logout", post(logout))
        .route("/api/auth/password/change", post(change_password))
}

/// Where the refresh token goes: the HTTP-only cookie, or (non-browser clients that ask
/// with `X-Refresh-Token-Delivery: body`) the response body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Delivery {
    Cookie,
    Body,
}

fn asked_for_body(headers: &HeaderMap) -> bool {
    headers
        .get("x-refresh-token-delivery")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("body"))
}

impl AppState {
    fn lifetimes(&self) -> Lifetimes {
        Lifetimes {
            policy: Policy {
                refresh_ttl: self.settings.refresh_ttl.as_secs() as i64,
                grace: self.settings.refresh_grace.as_secs() as i64,
            },
            session_max: self.settings.session_max.as_secs() as i64,
        }
    }

    /// A `Session` answer: a fresh access token, and the refresh token where it belongs.
    fn session_response(
        &self,
        status: StatusCode,
        user: &UserRow,
        issued: &Issued,
        delivery: Delivery,
        now: i64,
    ) -> Result<Response, ApiError> {
        let access_token = self
            .jwt
            .issue(
                &user.id,
                &issued.family_id,
                &user.role,
                now,
                &mut rand::rng(),
            )
            .map_err(ApiError::internal)?;
        let body = Session {
            user: user.to_api(),
            access_token,
            token_type: "Bearer".into(),
            expires_in: self.jwt.ttl_secs() as u64,
            refresh_token: (delivery == Delivery::Body).then(|| issued.refresh_token.clone()),
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if delivery == Delivery::Cookie {
            let max_age = issued.expires_at - now;
            headers.insert(
                header::SET_COOKIE,
                cookie::set(&issued.refresh_token, max_age, self.settings.cookie_secure),
            );
        }
        Ok(response)
    }

    /// A new family for a person who just registered or logged in, and its `Session`.
    async fn start_session(
        &self,
        status: StatusCode,
        user: &UserRow,
        headers: &HeaderMap,
        ip: &str,
        now: i64,
    ) -> Result<Response, ApiError> {
        let first_token = tokens::random_token(&mut rand::rng());
        let issued = session::start(
            &self.db,
            &user.id,
            now,
            self.lifetimes(),
            client_info(headers, ip),
            first_token,
        )
        .await?;
        self.session_response(status, user, &issued, delivery(headers), now)
    }

    /// An error that also clears the refresh cookie.
    fn clearing(&self, error: ApiError) -> Response {
        let mut response = error.into_response();
        response.headers_mut().insert(
            header::SET_COOKIE,
            cookie::clear(self.settings.cookie_secure),
        );
        response
    }
}

fn client_info<'a>(headers: &'a HeaderMap, ip: &'a str) -> ClientInfo<'a> {
    ClientInfo {
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| &ua[..ua.len().min(512)]),
        ip: Some(ip),
    }
}

fn delivery(headers: &HeaderMap) -> Delivery {
    if asked_for_body(headers) {
        Delivery::Body
    } else {
        Delivery::Cookie
    }
}

async fn register(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<Response, ApiError> {
    let now = state.clock.unix();
    let ip = addr.ip().to_string();
    let ip_key = format!("register:{ip}");
    let budget = [(ip_key.as_str(), throttle::IP_REGISTER)];
    state
        .throttle
        .check_and_hit(&budget, now)
        .map_err(|retry_after| ApiError::RateLimited { retry_after })?;

    let mut errors = validate::FieldErrors::new();
    let name = validate::name(&body.name, &mut errors);
    let email = validate::email(&body.email, &mut errors);
    validate::password(&body.password, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let password = SecretString::from(body.password);
    let password_hash = state.passwords.hash(&password).await?;
    let id = uuid::Uuid::new_v4().to_string();
    let mut tx = state.db.begin_write().await?;
    let user = users::insert(
        &mut *tx,
        NewUser {
            id: &id,
            email: &email,
            name: &name,
            password_hash: &password_hash,
            role: Role::User.as_str(),
            now,
        },
    )
    .await
    .map_err(|e| match e {
        InsertUserError::EmailTaken => ApiError::EmailTaken,
        InsertUserError::Db(e) => ApiError::from(e),
    })?;
    // A new account has no code yet, so this always makes one.
    let code_mail = super::verify::new_code(&mut *tx, &state, &user, now).await?;
    tx.commit().await?;
    if let Some(mail) = code_mail {
        state.mailer.queue(mail);
    }
    tracing::info!(user_id = %user.id, "registered");
    state
        .start_session(StatusCode::CREATED, &user, &headers, &ip, now)
        .await
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let now = state.clock.unix();
    let mut errors = validate::FieldErrors::new();
    let email = validate::email(&body.email, &mut errors);
    if body.password.is_empty() {
        errors.insert("password".into(), "Enter your password.".into());
    } else if body.password.chars().count() > validate::PASSWORD_MAX {
        errors.insert("password".into(), "The password is too long.".into());
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }

    let ip = addr.ip().to_string();
    let account_key = format!("login:{}:{ip}", email_key(&email));
    let ip_key = format!("login-ip:{ip}");
    let budgets = [
        (account_key.as_str(), throttle::ACCOUNT_AND_IP),
        (ip_key.as_str(), throttle::IP_LOGIN),
    ];
    state
        .throttle
        .check(&budgets, now)
        .map_err(|retry_after| ApiError::RateLimited { retry_after })?;

    let password = SecretString::from(body.password);
    let user = users::find_by_email(state.db.pool(), &email).await?;
    let Verified {
        valid,
        needs_rehash,
    } = state
        .passwords
        .verify(&password, user.as_ref().map(|u| u.password_hash.as_str()))
        .await?;
    let user = match user {
        Some(user) if valid => user,
        other => {
            state.throttle.hit(&budgets, now);
            tracing::info!("login failed");
            let unknown = format!("unknown account {}", email_key(&email));
            audit::record(
                state.db.pool(),
                audit::Event {
                    action: audit::Action::LoginFailed,
                    actor_id: None,
                    subject_id: other.as_ref().map(|u| u.id.as_str()),
                    ip: Some(&ip),
                    detail: Some(if other.is_some() {
                        "wrong password"
                    } else {
                        &unknown
                    }),
                    now,
                },
            )
            .await?;
            return Err(ApiError::InvalidCredentials);
        }
    };
    state.throttle.clear(&account_key);
    if !user.active {
        return Err(ApiError::AccountDisabled);
    }
    if needs_rehash {
        let fresh = state.passwords.hash(&password).await?;
        users::set_password_hash(state.db.pool(), &user.id, &fresh, now).await?;
        state.users.evict(&user.id);
        tracing::info!(user_id = %user.id, "password re-hashed with current parameters");
    }
    tracing::info!(user_id = %user.id, "logged in");
    audit::record(
        state.db.pool(),
        audit::Event {
            action: audit::Action::LoginSucceeded,
            actor_id: Some(&user.id),
            subject_id: Some(&user.id),
            ip: Some(&ip),
            detail: None,
            now,
        },
    )
    .await?;
    state
        .start_session(StatusCode::OK, &user, &headers, &ip, now)
        .await
}

/// The presented refresh token: `Authorization: Bearer` wins over the cookie.
fn presented_refresh_token(parts: &Parts) -> Option<(String, bool)> {
    match bearer(parts) {
        Some(token) => Some((token.to_string(), true)),
        None => cookie::read(&parts.headers).map(|t| (t, false)),
    }
}

async fn refresh(State(state): State<AppState>, parts: Parts) -> Response {
    if !csrf::origin_allowed(&parts, &state.settings) {
        return ApiError::OriginForbidden.into_response();
    }
    let Some((presented, by_header)) = presented_refresh_token(&parts) else {
        return state.clearing(ApiError::RefreshMissing);
    };
    match refresh_inner(&state, &presented, by_header, &parts.headers).await {
        Ok(response) => response,
        Err(e @ (ApiError::Internal(_) | ApiError::Unavailable)) => e.into_response(),
        Err(e) => state.clearing(e),
    }
}

async fn refresh_inner(
    state: &AppState,
    presented: &str,
    by_header: bool,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let now = state.clock.unix();
    let issued = session::refresh(
        &state.db,
        &state.secret,
        presented,
        now,
        state.lifetimes().policy,
    )
    .await?;
    let issued = match issued {
        Ok(issued) => issued,
        Err(RefreshFailure::Invalid) => return Err(ApiError::RefreshInvalid),
        Err(RefreshFailure::Expired) => return Err(ApiError::RefreshExpired),
        Err(RefreshFailure::Reused(cause)) => {
            tracing::warn!(
                cause = cause.as_str(),
                "refresh token reused: session revoked"
            );
            return Err(ApiError::RefreshReused);
        }
        // Revoked when an admin disabled the person: say so while they still are.
        Err(RefreshFailure::Disabled { user_id }) => {
            let still_disabled = users::find_by_id(state.db.pool(), &user_id)
                .await?
                .is_some_and(|u| !u.active);
            return Err(if still_disabled {
                ApiError::AccountDisabled
            } else {
                ApiError::RefreshInvalid
            });
        }
    };
    let user = users::find_by_id(state.db.pool(), &issued.user_id)
        .await?
        .ok_or(ApiError::RefreshInvalid)?;
    if !user.active {
        return Err(ApiError::AccountDisabled);
    }
    // A cookie-authenticated refresh never puts the token in a body, whatever it asks.
    let delivery = if by_header && asked_for_body(headers) {
        Delivery::Body
    } else {
        Delivery::Cookie
    };
    state.session_response(StatusCode::OK, &user, &issued, delivery, now)
}

async fn logout(State(state): State<AppState>, parts: Parts) -> Result<Response, ApiError> {
    if !csrf::origin_allowed(&parts, &state.settings) {
        return Err(ApiError::OriginForbidden);
    }
    if let Some((presented, _)) = presented_refresh_token(&parts) {
        session::logout(&state.db, &presented, state.clock.unix()).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        cookie::clear(state.settings.cookie_secure),
    );
    Ok(response)
}

/// Changes the signed-in person's password (the current one required) and ends every
/// other session of theirs; this one goes on.
async fn change_password(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    user: AuthUser,
    ApiJson(body): ApiJson<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    let now = state.clock.unix();
    let mut errors = validate::FieldErrors::new();
    if body.current_password.is_empty() {
        errors.insert(
            "current_password".into(),
            "Enter your current password.".into(),
        );
    }
    validate::password(&body.new_password, &mut errors);
    if let Some(why) = errors.remove("password") {
        errors.insert("new_password".into(), why);
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let key = format!("password:{}:{}", user.user_id(), addr.ip());
    let budget = [(key.as_str(), throttle::ACCOUNT_AND_IP)];
    state
        .throttle
        .check(&budget, now)
        .map_err(|retry_after| ApiError::RateLimited { retry_after })?;
    let row = users::find_by_id(state.db.pool(), user.user_id())
        .await?
        .ok_or(ApiError::TokenInvalid)?;
    let current = SecretString::from(body.current_password);
    if !state
        .passwords
        .verify(&current, Some(&row.password_hash))
        .await?
        .valid
    {
        state.throttle.hit(&budget, now);
        return Err(ApiError::InvalidCredentials);
    }
    state.throttle.clear(&key);
    let fresh = state
        .passwords
        .hash(&SecretString::from(body.new_password))
        .await?;
    users::set_password_hash(state.db.pool(), &row.id, &fresh, now).await?;
    // Access tokens issued before now stop working (this session refreshes transparently).
    users::bump_epoch(state.db.pool(), &row.id, now).await?;
    state.users.evict(&row.id);
    let ended = crate::db::sessions::revoke_others(
        state.db.pool(),
        &row.id,
        user.session_id(),
        now,
        "password changed",
    )
    .await?;
    tracing::info!(user_id = %row.id, other_sessions_ended = ended, "password changed");
    let ip = addr.ip().to_string();
    audit::record(
        state.db.pool(),
        audit::Event {
            action: audit::Action::PasswordChanged,
            actor_id: Some(&row.id),
            subject_id: Some(&row.id),
            ip: Some(&ip),
            detail: None,
            now,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
