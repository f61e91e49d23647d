use crate::{auth::jwt::JwtKeys, config::Settings, service::Core};
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::sync::Arc;

/// Everything a handler may need; each takes only its part through `State<…>`.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub settings: Arc<Settings>,
    pub clock: crate::clock::SharedClock,
    pub jwt: Arc<JwtKeys>,
    /// What the services work with.
    pub core: Core,
}

/// For handlers that need only the database (the readiness check).
impl FromRef<AppState> for crate::db::Db {
    fn from_ref(state: &AppState) -> crate::db::Db {
        state.core.db.clone()
    }
}
