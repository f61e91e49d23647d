//! Request guards: `AuthUser` (a valid access token is required), `MaybeAuthUser` (one is
//! parsed when present) and `RequireRole` (a role on top of `AuthUser`).
//!
//! With `REQUIRE_VERIFIED_EMAIL=true` each of them also answers 403 `email_unverified` to a
//! person who has not verified their email; `AllowUnverified` is the one exception, for the
//! few routes such a person needs (`GET /api/me`, verifying the email).

use crate::{
    auth::{
        access::{self, Access},
        jwt::{AccessClaims, TokenError},
    },
    error::ApiError,
    service::user_cache::CachedUser,
    state::AppState,
};
use api::Role;
use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{header, request::Parts},
};
use std::{marker::PhantomData, net::SocketAddr, sync::Arc};

/// The client's address (see `proxies`): what rate limits, sessions and the audit log
/// record. The peer's, or, from a peer in `TRUSTED_PROXIES`, the one `X-Forwarded-For`
/// names.
#[derive(Clone, Debug)]
pub struct ClientIp(pub String);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .ok_or_else(|| ApiError::internal("no peer address: not served by serve.rs"))?;
        // Read whatever bytes came: a header a client filled with non-ASCII bytes (which a
        // proxy then appends the real address to) must not be dropped whole, or the client
        // would pass for the proxy.
        let forwarded_for: Vec<String> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        let address = crate::proxies::client_address(
            peer,
            forwarded_for.iter().map(String::as_str),
            &state.settings.http.trusted_proxies,
        );
        Ok(ClientIp(address.to_string()))
    }
}

#[derive(Clone, Debug)]
pub struct AuthUser {
    pub role: Role,
    pub claims: Arc<AccessClaims>,
    /// The person as of at most `user_cache::TTL_SECS` ago (at once after a change made
    /// on this instance).
    pub account: CachedUser,
}

impl AuthUser {
    pub fn user_id(&self) -> &str {
        &self.claims.sub
    }

    /// The session (refresh family) the token was issued to.
    pub fn session_id(&self) -> &str {
        &self.claims.sid
    }
}

/// `Some(token)` from `Authorization: Bearer <token>`; `None` when there is no such header.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

async fn authenticate(token: &str, state: &AppState) -> Result<AuthUser, ApiError> {
    let now = state.clock.unix();
    let claims = state.jwt.verify(token, now).map_err(|e| match e {
        TokenError::Expired => ApiError::TokenExpired,
        TokenError::Invalid => ApiError::TokenInvalid,
    })?;
    let role = Role::parse(&claims.role).ok_or(ApiError::TokenInvalid)?;
    let account = state
        .core
        .users
        .get(&state.core.db, &claims.sub, &claims.sid, claims.iat, now)
        .await?
        .ok_or(ApiError::TokenInvalid)?;
    if !still_valid(&claims, &account) {
        return Err(ApiError::TokenInvalid);
    }
    Ok(AuthUser {
        role,
        claims,
        account,
    })
}

fn still_valid(claims: &AccessClaims, account: &CachedUser) -> bool {
    let row = &account.row;
    access::token_honoured(
        &claims.role,
        account.has_session(&claims.sid),
        Access {
            role: row.role,
            active: row.active,
        },
    )
}

/// The email rule of `REQUIRE_VERIFIED_EMAIL`.
fn verified_enough(user: AuthUser, state: &AppState) -> Result<AuthUser, ApiError> {
    if state.settings.auth.require_verified_email && !user.account.row.email_verified {
        Err(ApiError::EmailUnverified)
    } else {
        Ok(user)
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let AllowUnverified(user) = AllowUnverified::from_request_parts(parts, state).await?;
        verified_enough(user, state)
    }
}

/// `AuthUser` without the `REQUIRE_VERIFIED_EMAIL` rule: for the routes an unverified
/// person needs in order to verify.
pub struct AllowUnverified(pub AuthUser);

impl FromRequestParts<AppState> for AllowUnverified {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or(ApiError::TokenMissing)?;
        authenticate(token, state).await.map(AllowUnverified)
    }
}

/// The person when a token is sent; a token that is sent but bad is still refused.
pub struct MaybeAuthUser(pub Option<AuthUser>);

impl FromRequestParts<AppState> for MaybeAuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match bearer(parts) {
            None => Ok(MaybeAuthUser(None)),
            Some(token) => {
                let user = verified_enough(authenticate(token, state).await?, state)?;
                Ok(MaybeAuthUser(Some(user)))
            }
        }
    }
}

/// A role a route requires.
pub trait RequiredRole {
    const ROLE: Role;
}

pub struct Admin;

impl RequiredRole for Admin {
    const ROLE: Role = Role::Admin;
}

/// `RequireRole<Admin>` in a handler's arguments admits admins only (403 `forbidden`).
pub struct RequireRole<R: RequiredRole>(pub AuthUser, pub PhantomData<R>);

impl<R: RequiredRole> FromRequestParts<AppState> for RequireRole<R> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if access::has_role(user.role, R::ROLE) {
            Ok(RequireRole(user, PhantomData))
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    #[test]
    fn bearer_parsing() {
        let parts = |v: &str| {
            Request::builder()
                .header("authorization", v)
                .body(())
                .unwrap()
                .into_parts()
                .0
        };
        assert_eq!(bearer(&parts("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&parts("bearer abc")), Some("abc"));
        assert_eq!(bearer(&parts("Basic abc")), None);
        assert_eq!(bearer(&parts("Bearer")), None);
        assert_eq!(bearer(&Request::new(()).into_parts().0), None);
    }
}
