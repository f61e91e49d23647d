//! Signing in with identity providers: the list of providers, the start route (a
//! top-level navigation that ends at the provider) and the callback (which ends at the
//! page the person wanted, signed in, or at the login page saying what went wrong).

use super::{
    client, cookie,
    extract::{AuthUser, ClientIp},
};
use crate::{
    error::{ApiError, ApiPath, ApiQuery},
    oidc::Provider,
    service::identities::{self, Callback, Finished, FLOW_SECS},
    state::AppState,
};
use api::{
    endpoints::{LINK_IDENTITY, MY_SIGN_IN_METHODS, PROVIDERS, UNLINK_IDENTITY},
    ErrorCode, IdentityInfo, LinkAnswer, ProviderInfo, SignInMethods,
};
use axum::{
    extract::State,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde::Deserialize;
use std::sync::Arc;

pub const START: &str = "/api/auth/oidc/{id}/start";
pub const CALLBACK: &str = "/api/auth/oidc/{id}/callback";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(PROVIDERS.path, get(providers))
        .route(START, get(start))
        .route(CALLBACK, get(callback))
        .route(LINK_IDENTITY.path, post(link))
        .route(MY_SIGN_IN_METHODS.path, get(sign_in_methods))
        .route(UNLINK_IDENTITY.path, axum::routing::delete(unlink))
}

async fn sign_in_methods(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<SignInMethods>, ApiError> {
    let (password_set, linked) = identities::methods(&state.core, user.user_id()).await?;
    Ok(Json(SignInMethods {
        password_set,
        identities: linked
            .into_iter()
            .map(|i| IdentityInfo {
                provider: i.provider,
                email: i.email,
                linked_at: crate::clock::rfc3339(i.linked_at),
            })
            .collect(),
    }))
}

async fn unlink(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiPath(provider): ApiPath<String>,
    headers: HeaderMap,
    user: AuthUser,
) -> Result<StatusCode, ApiError> {
    identities::unlink(
        &state.core,
        user.user_id(),
        &provider,
        client(&headers, &ip),
        state.clock.unix(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn providers(State(state): State<AppState>) -> Json<Vec<ProviderInfo>> {
    Json(
        state
            .core
            .providers
            .all()
            .map(|p| ProviderInfo {
                id: p.settings.id.clone(),
                name: p.settings.name.clone(),
            })
            .collect(),
    )
}

fn provider(state: &AppState, id: &str) -> Result<Arc<Provider>, ApiError> {
    state
        .core
        .providers
        .get(id)
        .cloned()
        .ok_or(ApiError::NotFound)
}

#[derive(Deserialize)]
struct StartQuery {
    next: Option<String>,
    /// A one-time ticket from the link route: the flow links the identity to its account.
    link: Option<String>,
}

async fn start(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<StartQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let provider = provider(&state, &id)?;
    let now = state.clock.unix();
    let next = api::next::safe_next(query.next.as_deref());
    let started = match query.link {
        Some(ticket) => {
            let refresh = cookie::read(&headers);
            identities::start_link(&state.core, &provider, &ticket, refresh.as_deref(), now).await?
        }
        None => identities::start_sign_in(&state.core, &provider, &next, &ip, now).await?,
    };
    let secure = state.settings.http.cookie_secure;
    Ok(redirect(
        &started.authorize_url,
        Some(cookie::set_flow(&started.flow_token, FLOW_SECS, secure)),
    ))
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

async fn callback(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<CallbackQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let provider = provider(&state, &id)?;
    let now = state.clock.unix();
    let flow_token = cookie::read_flow(&headers, state.settings.http.cookie_secure);
    let finished = identities::finish(
        &state.core,
        &provider,
        Callback {
            flow_token: flow_token.as_deref(),
            state: query.state.as_deref(),
            code: query.code.as_deref(),
            error: query.error.as_deref(),
        },
        client(&headers, &ip),
        now,
    )
    .await;
    let secure = state.settings.http.cookie_secure;
    let clear_flow = cookie::clear_flow(secure);
    let mut response = match finished {
        Ok(Finished::SignedIn { signed_in, next }) => {
            let mut response = redirect(&next, Some(clear_flow));
            let max_age = signed_in.issued.expires_at - now;
            response.headers_mut().append(
                header::SET_COOKIE,
                cookie::set(&signed_in.issued.refresh_token, max_age, secure),
            );
            response
        }
        // The token rides in the fragment, which no request carries (nor a Referer): the
        // login page reads it and asks for the code.
        Ok(Finished::SecondFactor { mfa_token, next }) => redirect(
            &format!(
                "/login?next={}#mfa={mfa_token}",
                api::encode::percent_encode(&next)
            ),
            Some(clear_flow),
        ),
        Ok(Finished::Linked) => redirect("/account", Some(clear_flow)),
        Ok(Finished::LinkFailed(error)) => redirect(
            &format!(
                "/account?error={}",
                callback_code(&error, &id, true).as_str()
            ),
            Some(clear_flow),
        ),
        // No flow of this browser was used: its cookie stays, for the callback that may yet
        // come (a forged callback must not end a sign-in in progress).
        Err(ApiError::OidcStateInvalid) => redirect(
            &format!("/login?error={}", ErrorCode::OidcStateInvalid.as_str()),
            None,
        ),
        Err(error) => redirect(
            &format!(
                "/login?error={}",
                callback_code(&error, &id, false).as_str()
            ),
            Some(clear_flow),
        ),
    };
    // Nothing of the callback's answer is for a cache.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `POST /api/auth/oidc/{id}/link`: a start URL carrying a one-time ticket for the signed-in
/// person; the browser navigates to it, and the callback links the identity to them.
async fn link(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    user: AuthUser,
) -> Result<Json<LinkAnswer>, ApiError> {
    let provider = provider(&state, &id)?;
    let ticket =
        identities::new_link_ticket(&state.core, user.user_id(), state.clock.unix()).await?;
    Ok(Json(LinkAnswer {
        url: format!(
            "/api/auth/oidc/{}/start?link={ticket}",
            provider.settings.id
        ),
    }))
}

/// The code a failed callback's page shows: the contract's own codes as they are
/// (`identity_taken` for a link, on the account page); anything else is `oidc_failed` for
/// the person, and its cause goes to the log.
fn callback_code(error: &ApiError, provider: &str, linking: bool) -> ErrorCode {
    match error {
        ApiError::OidcCancelled
        | ApiError::OidcStateInvalid
        | ApiError::OidcEmailUnverified
        | ApiError::AccountDisabled => error.code(),
        ApiError::IdentityTaken if linking => error.code(),
        ApiError::OidcFailed(reason) => {
            tracing::warn!(provider, %reason, "sign-in at an identity provider failed");
            ErrorCode::OidcFailed
        }
        other => {
            tracing::error!(provider, error = %other, "identity provider callback failed");
            ErrorCode::OidcFailed
        }
    }
}

/// A 303 to `location`, with a cookie to set or clear.
fn redirect(location: &str, set_cookie: Option<HeaderValue>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    if let Some(cookie) = set_cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}
