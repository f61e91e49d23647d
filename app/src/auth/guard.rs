//! The guard of the pages for signed-in people.

use super::{logic::login_url, use_auth, AuthState};
use leptos::prelude::*;
use leptos_router::{hooks::use_navigate, NavigateOptions};

/// For pages only for signed-in people: sends a signed-out visitor to the login page,
/// coming back to `path` afterwards. The id of the person signed in: it changes once per
/// sign-in, not at every token refresh, so a page's data loads once per person, and again
/// when another person signs in (in this tab or another), never mixing two people.
pub fn require_sign_in(path: &'static str) -> Memo<Option<String>> {
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
    Memo::new(move |_| match auth.state.get() {
        AuthState::SignedIn(user) => Some(user.id),
        _ => None,
    })
}
