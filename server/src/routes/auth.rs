//! `/api/auth/*`: register, login, refresh, logout, change password. Each handler parses
//! its request, calls one service, and answers in the contract's terms.

use super::{
    client, cookie,
    extract::{bearer, AuthUser, ClientIp},
    origin_allowed, user_json,
};
use crate::{
    auth::validate,
    error::{ApiError, ApiJson},
    service::{
        accounts::{self, NewAccount, PasswordChange},
        sessions::{self, Credentials},
        SignedIn,
    },
    state::AppState,
};
use api::{ChangePasswordRequest, LoginRequest, RegisterRequest, Session};
use axum::{
    extract::State,
    http::{header, request::Parts, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use secrecy::SecretString;

/// Paths from the endpoint table the browser client uses too, so the two cannot drift.
pub fn router() -> Router<AppState> {
    use api::endpoints::*;
    Router::new()
        .route(REGISTER.path, post(register))
        .route(LOGIN.path, post(login))
        .route(REFRESH.path, post(refresh))
        .route(LOGOUT.path, post(logout))
        .route(CHANGE_PASSWORD.path, post(change_password))
}

/// Where the refresh token goes: the HTTP-only cookie, or (non-browser clients that ask
/// with `X-Refresh-Token-Delivery: body`) the response body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Delivery {
    Cookie,
    Body,
}

fn asked_for_body(headers: &HeaderMap) -> bool {
    headers
        .get("x-refresh-token-delivery")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("body"))
}

pub(super) fn delivery(headers: &HeaderMap) -> Delivery {
    if asked_for_body(headers) {
        Delivery::Body
    } else {
        Delivery::Cookie
    }
}

/// A `Session` answer: a fresh access token, and the refresh token where it belongs.
pub(super) fn session_response(
    state: &AppState,
    status: StatusCode,
    signed: &SignedIn,
    delivery: Delivery,
    now: i64,
) -> Result<Response, ApiError> {
    let SignedIn { user, issued } = signed;
    let access_token = state
        .jwt
        .issue(
            &user.id,
            &issued.family_id,
            user.role.as_str(),
            now,
            &mut rand::rng(),
        )
        .map_err(ApiError::internal)?;
    let body = Session {
        user: user_json(user),
        access_token,
        token_type: "Bearer".into(),
        expires_in: state.jwt.ttl_secs() as u64,
        refresh_token: (delivery == Delivery::Body).then(|| issued.refresh_token.clone()),
    };
    let mut response = (status, Json(body)).into_response();
    let headers = response.headers_mut();
    if delivery == Delivery::Cookie {
        let max_age = issued.expires_at - now;
        headers.insert(
            header::SET_COOKIE,
            cookie::set(
                &issued.refresh_token,
                max_age,
                state.settings.http.cookie_secure,
            ),
        );
    }
    Ok(response)
}

/// An error that also clears the refresh cookie.
fn clearing(state: &AppState, error: ApiError) -> Response {
    let mut response = error.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        cookie::clear(state.settings.http.cookie_secure),
    );
    response
}

async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<Response, ApiError> {
    let now = state.clock.unix();
    let account = NewAccount {
        email: body.email,
        name: body.name,
        password: SecretString::from(body.password),
    };
    let signed = accounts::register(&state.core, account, client(&headers, &ip), now).await?;
    session_response(
        &state,
        StatusCode::CREATED,
        &signed,
        delivery(&headers),
        now,
    )
}

async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
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
    let credentials = Credentials {
        email,
        password: SecretString::from(body.password),
    };
    let signed = sessions::login(&state.core, credentials, client(&headers, &ip), now).await?;
    session_response(&state, StatusCode::OK, &signed, delivery(&headers), now)
}

/// The presented refresh token: `Authorization: Bearer` wins over the cookie.
fn presented_refresh_token(parts: &Parts) -> Option<(String, bool)> {
    match bearer(parts) {
        Some(token) => Some((token.to_string(), true)),
        None => cookie::read(&parts.headers).map(|t| (t, false)),
    }
}

async fn refresh(State(state): State<AppState>, parts: Parts) -> Response {
    if !origin_allowed(&parts, &state.settings) {
        return ApiError::OriginForbidden.into_response();
    }
    let Some((presented, by_header)) = presented_refresh_token(&parts) else {
        return clearing(&state, ApiError::RefreshMissing);
    };
    let now = state.clock.unix();
    let answer = match sessions::refresh(&state.core, &presented, now).await {
        // A cookie-authenticated refresh never puts the token in a body, whatever it asks.
        Ok(signed) => {
            let delivery = if by_header && asked_for_body(&parts.headers) {
                Delivery::Body
            } else {
                Delivery::Cookie
            };
            session_response(&state, StatusCode::OK, &signed, delivery, now)
        }
        Err(e) => Err(e),
    };
    match answer {
        Ok(response) => response,
        // The server's trouble says nothing about the token: keep the cookie.
        Err(e @ (ApiError::Internal(_) | ApiError::Unavailable | ApiError::Overloaded { .. })) => {
            e.into_response()
        }
        Err(e) => clearing(&state, e),
    }
}

async fn logout(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    parts: Parts,
) -> Result<Response, ApiError> {
    if !origin_allowed(&parts, &state.settings) {
        return Err(ApiError::OriginForbidden);
    }
    if let Some((presented, _)) = presented_refresh_token(&parts) {
        let client = client(&parts.headers, &ip);
        sessions::logout(&state.core, &presented, client, state.clock.unix()).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        cookie::clear(state.settings.http.cookie_secure),
    );
    Ok(response)
}

/// Changes the signed-in person's password (the current one required) and ends every
/// other session of theirs; this one goes on.
async fn change_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    user: AuthUser,
    ApiJson(body): ApiJson<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
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
    let change = PasswordChange {
        current: SecretString::from(body.current_password),
        new: SecretString::from(body.new_password),
    };
    accounts::change_password(
        &state.core,
        user.user_id(),
        user.session_id(),
        change,
        client(&headers, &ip),
        state.clock.unix(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
