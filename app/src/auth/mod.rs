//! The browser auth runtime: the access token in memory, refresh and retry, silent
//! restore, and the guard of the pages for signed-in people. `logic` holds its decisions
//! as plain, natively tested Rust.

mod guard;
pub mod logic;
mod runtime;
#[cfg(feature = "hydrate")]
mod tabs;
#[cfg(feature = "hydrate")]
pub mod webauthn;

pub use guard::require_sign_in;
pub use runtime::{provide_auth, use_auth, ApiFailure, Auth, AuthState};
