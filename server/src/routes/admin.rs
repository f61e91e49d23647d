//! `/api/admin/*`: people, their roles and access. Admins only (`RequireRole<Admin>`).

use super::{
    client,
    extract::{Admin, ClientIp, RequireRole},
    user_json,
};
use crate::{
    db::{audit, users},
    error::{ApiError, ApiJson, ApiPath},
    service::{
        accounts::{self, AccessChange},
        mfa,
    },
    state::AppState,
};
use api::{AdminUser, AuditEntry, UpdateUserRequest, UserPage};
use axum::{
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    routing::{get, patch, post},
    Json, Router,
};
use std::collections::{BTreeMap, HashMap};

/// Paths from the endpoint table the browser client uses too, so the two cannot drift.
pub fn router() -> Router<AppState> {
    use api::endpoints::*;
    Router::new()
        .route(ADMIN_LIST_USERS.path, get(list))
        .route(ADMIN_UPDATE_USER.path, patch(update))
        .route(ADMIN_REVOKE_USER_SESSIONS.path, post(revoke_sessions))
        .route(ADMIN_AUDIT_LOG.path, get(audit_log))
        .route(ADMIN_RESET_MFA.path, post(reset_mfa))
}

const PER_PAGE_MAX: u32 = 100;

fn admin_user(row: &users::UserRow) -> AdminUser {
    AdminUser {
        user: user_json(row),
        active: row.active,
    }
}

/// `page` (from 1) and `per_page` (1 to 100) of a query string.
fn paging(query: &HashMap<String, String>) -> Result<(u32, u32), ApiError> {
    let mut errors = BTreeMap::new();
    let mut number = |name: &str, default: u32, max: u32| match query.get(name) {
        None => default,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                errors.insert(
                    name.to_string(),
                    format!("Expected a number from 1 to {max}."),
                );
                default
            }
        },
    };
    let page = number("page", 1, u32::MAX);
    let per_page = number("per_page", 20, PER_PAGE_MAX);
    if errors.is_empty() {
        Ok((page, per_page))
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// `?page=1&per_page=20&q=ada`: pages from 1, search in email and name.
async fn list(
    State(state): State<AppState>,
    RequireRole(_admin, _): RequireRole<Admin>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<UserPage>, ApiError> {
    let (page, per_page) = paging(&query)?;
    let q = query.get("q").map(|q| q.trim()).unwrap_or_default();
    let offset = i64::from(page - 1) * i64::from(per_page);
    let (rows, total) = users::search(state.core.db.pool(), q, i64::from(per_page), offset).await?;
    Ok(Json(UserPage {
        users: rows.iter().map(admin_user).collect(),
        total: total.max(0) as u64,
        page,
        per_page,
    }))
}

/// Changes role and/or active; takes effect at once (older access tokens stop working, a
/// disabled person's sessions are revoked). The last active admin stays one.
async fn update(
    State(state): State<AppState>,
    RequireRole(admin, _): RequireRole<Admin>,
    ApiPath(id): ApiPath<String>,
    ApiJson(change): ApiJson<UpdateUserRequest>,
) -> Result<Json<AdminUser>, ApiError> {
    let change = AccessChange {
        role: change.role,
        active: change.active,
    };
    let updated = accounts::change_access(
        &state.core,
        admin.user_id(),
        &id,
        change,
        state.clock.unix(),
    )
    .await?;
    Ok(Json(admin_user(&updated)))
}

/// Ends every session of the person, access tokens included.
async fn revoke_sessions(
    State(state): State<AppState>,
    RequireRole(admin, _): RequireRole<Admin>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    accounts::end_all_sessions(&state.core, admin.user_id(), &id, state.clock.unix()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Turns a person's second factor off (they lost their authenticator and its recovery
/// codes); audited.
async fn reset_mfa(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    RequireRole(admin, _): RequireRole<Admin>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let client = client(&headers, &ip);
    mfa::reset_by_admin(
        &state.core,
        admin.user_id(),
        &id,
        client,
        state.clock.unix(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `?page=1&per_page=20`: the audit log, newest first.
async fn audit_log(
    State(state): State<AppState>,
    RequireRole(_admin, _): RequireRole<Admin>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    let (page, per_page) = paging(&query)?;
    let offset = i64::from(page - 1) * i64::from(per_page);
    let entries = audit::page(state.core.db.pool(), i64::from(per_page), offset).await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| AuditEntry {
                at: crate::clock::rfc3339(e.at),
                id: e.id,
                action: e.action,
                actor_id: e.actor_id,
                subject_id: e.subject_id,
                actor_email: e.actor_email,
                subject_email: e.subject_email,
                ip: e.ip,
                detail: e.detail,
            })
            .collect(),
    ))
}
