//! Parts of pages loaded on demand. With the `split` feature (the release build:
//! `cargo leptos build --split --lib-features split`) each of these functions is `#[lazy]`,
//! a WASM chunk of its own, fetched the first time it runs or when its page preloads it.
//! Without it (`cargo leptos watch`, a bare build) they are ordinary async functions: a
//! `#[lazy]` function in a build that was not split could never load.
//!
//! A chunk that cannot be fetched (the network, or a deploy that removed the previous
//! build's files under a tab still open) stops the app in that tab until it is reloaded:
//! Leptos' `#[lazy]` panics then. Deploys keep the previous build's `pkg` files for that
//! reason (docs/deploy.md).
//!
//! Only what the server never renders may wait like this: the part of a page behind the
//! sign-in guard. The server never knows the session and renders a placeholder there, so
//! that part is built in the browser after the silent restore and never hydrated: the page
//! itself hydrates at once from the main chunk (`hydrate_body`), with no asynchronous
//! hydration (which lazy routes would need, and which makes the WASM larger).

use leptos::prelude::*;
use std::future::Future;

/// The view `load` makes, once its chunk is there; the page's placeholder until then.
#[cfg(feature = "hydrate")]
pub fn on_demand(load: impl Future<Output = AnyView> + 'static) -> impl IntoView {
    // The browser has one thread: the chunk's future need not be Send.
    shown_when_loaded(send_wrapper::SendWrapper::new(load))
}

/// On the server the guarded part is never rendered (no one is signed in there).
#[cfg(not(feature = "hydrate"))]
pub fn on_demand(load: impl Future<Output = AnyView> + Send + 'static) -> impl IntoView {
    shown_when_loaded(load)
}

fn shown_when_loaded(load: impl Future<Output = AnyView> + Send + 'static) -> impl IntoView {
    let loaded = RwSignal::new(false);
    let content = Suspend::new(async move {
        let view = load.await;
        loaded.set(true);
        view
    });
    view! {
        <Show when=move || !loaded.get()>
            <p class="placeholder" aria-busy="true">"Loading…"</p>
        </Show>
        {content}
    }
}
