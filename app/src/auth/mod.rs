//! The browser auth runtime: the access token in memory, refresh and retry, silent
//! restore. `logic` holds its decisions as plain, natively tested Rust.

pub mod logic;
mod runtime;
#[cfg(feature = "hydrate")]
mod tabs;

pub use runtime::{provide_auth, use_auth, ApiFailure, Auth, AuthState};
