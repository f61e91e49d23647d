use crate::{
    auth::{
        jwt::JwtKeys, password::Passwords, throttle::Throttle, tokens::ServerSecret,
        user_cache::UserCache,
    },
    clock::SharedClock,
    config::Settings,
    db::Db,
    mail::Mailer,
};
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::sync::Arc;

/// Everything a handler may need; each takes only its part through `State<…>`.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: Db,
    pub settings: Arc<Settings>,
    pub clock: SharedClock,
    pub jwt: Arc<JwtKeys>,
    pub secret: Arc<ServerSecret>,
    pub passwords: Passwords,
    pub throttle: Arc<Throttle>,
    pub users: Arc<UserCache>,
    pub mailer: Mailer,
}
