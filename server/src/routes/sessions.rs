//! `/api/sessions`: the person's signed-in devices, and ending them.

use super::extract::AuthUser;
use crate::{
    clock::rfc3339,
    db::sessions as session_rows,
    error::{ApiError, ApiPath},
    service::sessions,
    state::AppState,
};
use api::SessionInfo;
use axum::{
    extract::State,
    http::StatusCode,
    routing::{delete, get, post},
    Json, Router,
};

/// Paths from the endpoint table the browser client uses too, so the two cannot drift.
pub fn router() -> Router<AppState> {
    use api::endpoints::*;
    Router::new()
        .route(LIST_SESSIONS.path, get(list))
        .route(REVOKE_OTHER_SESSIONS.path, post(revoke_others))
        .route(REVOKE_SESSION.path, delete(revoke))
}

async fn list(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Vec<SessionInfo>>, ApiError> {
    let families =
        session_rows::live_for_user(state.core.db.pool(), user.user_id(), state.clock.unix())
            .await?;
    Ok(Json(
        families
            .into_iter()
            .map(|f| SessionInfo {
                current: f.id == user.session_id(),
                device: device(f.user_agent.as_deref().unwrap_or_default()),
                ip: f.ip,
                created_at: rfc3339(f.created_at),
                last_used_at: rfc3339(f.last_used_at),
                method: f.method,
                id: f.id,
            })
            .collect(),
    ))
}

/// Ends one of the person's sessions (its refresh and access tokens stop working at once).
async fn revoke(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    sessions::end_one(&state.core, user.user_id(), &id, state.clock.unix()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session of the person but the one asking.
async fn revoke_others(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<StatusCode, ApiError> {
    sessions::end_others(
        &state.core,
        user.user_id(),
        user.session_id(),
        state.clock.unix(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// "Firefox on Linux", from a user agent: enough for a person to recognise a device.
pub fn device(user_agent: &str) -> String {
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(marker, _)| user_agent.contains(marker))
    .map_or("Unknown browser", |(_, name)| name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(marker, _)| user_agent.contains(marker))
    .map(|(_, name)| *name);
    match system {
        Some(system) => format!("{browser} on {system}"),
        None => browser.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::device;

    #[test]
    fn devices_from_user_agents() {
        let cases = [
            ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox on Linux"),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36 Edg/126.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
                "Safari on iOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36",
                "Chrome on Android",
            ),
            ("curl/8.5.0", "curl"),
            ("", "Unknown browser"),
        ];
        for (ua, expected) in cases {
            assert_eq!(device(ua), expected, "{ua}");
        }
    }
}
