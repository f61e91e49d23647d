//! The guard of the pages for signed-in people.

use super::{logic::login_url, use_auth, AuthState};
use leptos::prelude::*;
use leptos_router::{hooks::use_navigate, NavigateOptions};

/// For pages only for signed-in people: sends a signed-out visitor to the login page,
/// coming back to `path` afterwards. True once signed in (once per sign-in, not at every
/// token refresh, so the page's data loads once).
pub fn require_sign_in(path: &'static str) -> Memo<bool> {
    let auth = use_auth();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if auth.state.get() == AuthState::SignedOut {
            navigate(
                &login_url(path),
                NavigateOptions {
                    replace: true,
                    ..Default::default()
                },
            );
        }
    });
    Memo::new(move |_| matches!(auth.state.get(), AuthState::SignedIn(_)))
}
