//! Rules and mechanisms of authentication, knowing neither the database nor HTTP nor the
//! settings: passwords, access tokens, refresh-token rotation, email codes, input rules,
//! the Origin rule, who may do what, and the brute-force limits.

pub mod access;
pub mod csrf;
pub mod email_code;
mod hash_threads;
pub mod jwt;
pub mod key_set;
pub mod keys;
pub mod passkeys;
pub mod password;
pub mod refresh;
pub mod throttle;
pub mod tokens;
pub mod totp;
pub mod validate;
