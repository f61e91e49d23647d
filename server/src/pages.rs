//! The server-rendered pages, handed in from outside. This library does not depend on
//! `app`: the binary (`server/bin/src/pages.rs`, which the tests use too) builds a
//! [`Pages`] from it. So a change in a page rebuilds `app` and the small binary, not this
//! whole library, which keeps `cargo leptos watch` quick.

use api::ProviderInfo;
use leptos::{config::LeptosOptions, prelude::AnyView};
use leptos_axum::AxumRouteListing;

/// What the server needs of `app` to render its pages.
pub struct Pages {
    /// The app's routes: `leptos_axum::generate_route_list(app::App)`.
    pub routes: Vec<AxumRouteListing>,
    /// The whole HTML document around the app: `app::any_shell`, `app::shell` with its
    /// type erased.
    pub shell: fn(LeptosOptions) -> AnyView,
    /// Makes the configured identity providers known to the page being rendered, in the
    /// context the pages read them from.
    pub provide_providers: fn(Vec<ProviderInfo>),
}
