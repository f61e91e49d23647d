//! The guard of the pages for signed-in people.

use super::{logic::login_url, use_auth, AuthState};
use crate::api::User;
use leptos::prelude::*;
use leptos_router::{hooks::use_navigate, NavigateOptions};

/// For pages only for signed-in people: sends a signed-out visitor to the login page,
/// coming back to `path` afterwards. The person signed in: it changes at a sign-in or when
/// the person's details change (a verified email, a new role), not at every token refresh,
/// so a page's data loads once, and again when another person signs in or the person
/// changes (in this tab or another), never mixing two people or old and new details.
pub fn require_sign_in(path: &'static str) -> Memo<Option<User>> {
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
        AuthState::SignedIn(user) => Some(user),
        _ => None,
    })
}
