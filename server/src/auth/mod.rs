//! Authentication: passwords, access tokens, refresh-token rotation and the request guards.

pub mod cookie;
pub mod csrf;
pub mod email_code;
pub mod extract;
mod hash_threads;
pub mod jwt;
pub mod keys;
pub mod password;
pub mod refresh;
pub mod session;
pub mod throttle;
pub mod tokens;
pub mod user_cache;
pub mod validate;
