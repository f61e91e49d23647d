//! `/api/admin/*`: people, their roles and access. Admins only (`RequireRole<Admin>`).

use crate::{
    auth::extract::{Admin, RequireRole},
    db::{audit, sessions, users},
    error::{ApiError, ApiJson, ApiPath},
    state::AppState,
};
use app::api::{AdminUser, AuditEntry, Role, UpdateUserRequest, UserPage};
use axum::{
    extract::{Query, State},
    http::StatusCode,
    routing::{get, patch, post},
    Json, Router,
};
use std::collections::{BTreeMap, HashMap};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/users", get(list))
        .route("/api/admin/users/{id}", patch(update))
        .route(
            "/api/admin/users/{id}/revoke-sessions",
            post(revoke_sessions),
        )
        .route("/api/admin/audit", get(audit_log))
}

const PER_PAGE_MAX: u32 = 100;

fn admin_user(row: &users::UserRow) -> AdminUser {
    AdminUser {
        user: row.to_api(),
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
    let (rows, total) = users::search(state.db.pool(), q, i64::from(per_page), offset).await?;
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
    let now = state.clock.unix();
    let mut tx = state.db.begin_write().await?;
    let target = users::find_by_id(&mut *tx, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let role = change
        .role
        .map_or(target.role.clone(), |r| r.as_str().to_string());
    let active = change.active.unwrap_or(target.active);
    let loses_admin = target.role == Role::Admin.as_str()
        && target.active
        && (role != Role::Admin.as_str() || !active);
    if loses_admin && users::count_active_admins(&mut *tx).await? <= 1 {
        return Err(ApiError::LastAdmin);
    }
    if role != target.role || active != target.active {
        users::update_access(&mut *tx, &id, &role, active, now).await?;
        if !active {
            sessions::revoke_all_of_user(&mut *tx, &id, now, sessions::DISABLED_BY_ADMIN).await?;
            crate::db::password_resets::delete_for_user(&mut *tx, &id).await?;
        }
        let detail = format!(
            "role {} to {role}, active {} to {active}",
            target.role, target.active
        );
        audit::record(
            &mut *tx,
            audit::Event {
                action: audit::Action::AccessChanged,
                actor_id: Some(admin.user_id()),
                subject_id: Some(&id),
                ip: None,
                detail: Some(&detail),
                now,
            },
        )
        .await?;
    }
    let updated = users::find_by_id(&mut *tx, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    tx.commit().await?;
    state.users.evict(&id);
    tracing::info!(admin = %admin.user_id(), user_id = %id, role = %role, active, "access changed by an admin");
    Ok(Json(admin_user(&updated)))
}

/// Ends every session of the person, access tokens included.
async fn revoke_sessions(
    State(state): State<AppState>,
    RequireRole(admin, _): RequireRole<Admin>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let now = state.clock.unix();
    let target = users::find_by_id(state.db.pool(), &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    sessions::revoke_all_of_user(
        state.db.pool(),
        &target.id,
        now,
        "sessions revoked by an admin",
    )
    .await?;
    users::bump_epoch(state.db.pool(), &target.id, now).await?;
    state.users.evict(&target.id);
    audit::record(
        state.db.pool(),
        audit::Event {
            action: audit::Action::SessionsRevokedByAdmin,
            actor_id: Some(admin.user_id()),
            subject_id: Some(&target.id),
            ip: None,
            detail: None,
            now,
        },
    )
    .await?;
    tracing::info!(admin = %admin.user_id(), user_id = %id, "sessions revoked by an admin");
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
    let entries = audit::page(state.db.pool(), i64::from(per_page), offset).await?;
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
