//! Parts of pages loaded on demand. With the `split` feature (the release build:
//! `cargo leptos build --split --lib-features split`) each part is a WASM chunk of its own,
//! fetched the first time it is shown, or ahead by [`preload`] (a page while the session is
//! restored; the header's "Admin" link when an admin points at it). Without it (`cargo
//! leptos watch`, a bare build) they are ordinary async functions: a split function in a
//! build that was not split could never load.
//!
//! A chunk that cannot be fetched (the network, or a deploy that removed the previous
//! build's files under a tab still open) leaves the rest of the app working: the part says
//! so in words and offers "Try again", which fetches it anew. The functions are split with
//! `wasm_split`'s `fallible` option for that (Leptos' `#[lazy]` would panic, stopping the
//! app in that tab), declared by [`on_demand_part!`].
//!
//! Only what the server never renders may wait like this, so that it is never hydrated: the
//! part of a page behind the sign-in guard (the server never knows the session and renders a
//! placeholder there; the browser builds the part after the silent restore), and the forms
//! of public pages few visitors use, which the server also renders as a placeholder
//! ([`once_running`]). The page itself hydrates at once from the main chunk
//! (`hydrate_body`), with no asynchronous hydration (which lazy routes would need, and which
//! makes the WASM larger).

use leptos::{either::EitherOf3, prelude::*};
use std::{future::Future, pin::Pin, sync::Arc};

/// What a part's chunk could not be fetched gives instead of its view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkUnavailable;

#[cfg(feature = "split")]
impl From<leptos::wasm_split::SplitLoaderError> for ChunkUnavailable {
    fn from(_: leptos::wasm_split::SplitLoaderError) -> ChunkUnavailable {
        ChunkUnavailable
    }
}

/// A part's view, once its chunk is there.
pub type Part = Result<AnyView, ChunkUnavailable>;

/// How a part is loaded, its type erased: the code around the loading (the placeholder,
/// "Try again", the suspense) is then compiled once for every part rather than once per
/// part, which made up about a twentieth of the main WASM with six parts.
type Load = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Part> + Send>> + Send + Sync>;

/// Declares `fn $name` (an `async fn() -> Part` making `$view`) and, with the `split`
/// feature, `$preload` (an `async fn` fetching its chunk ahead): a WASM chunk of its own
/// there, an ordinary async function without it.
macro_rules! on_demand_part {
    ($(#[$attr:meta])* fn $name:ident, preload $preload:ident => $view:expr) => {
        $(#[$attr])*
        #[cfg(feature = "split")]
        #[::leptos::wasm_split::wasm_split(
            $name,
            wasm_split_path = ::leptos::wasm_split,
            preload($preload),
            fallible,
            return_wrapper(let future = _; { future.await } -> crate::components::on_demand::Part)
        )]
        fn $name() -> ::std::pin::Pin<
            ::std::boxed::Box<
                dyn ::std::future::Future<Output = crate::components::on_demand::Part>
                    + ::std::marker::Send
                    + ::std::marker::Sync,
            >,
        > {
            // The browser has one thread: the view's future need not be Send.
            ::std::boxed::Box::pin(::leptos::__reexports::send_wrapper::SendWrapper::new(
                async move { ::std::result::Result::Ok(::leptos::prelude::IntoAny::into_any($view)) },
            ))
        }

        $(#[$attr])*
        #[cfg(not(feature = "split"))]
        async fn $name() -> crate::components::on_demand::Part {
            ::std::result::Result::Ok(::leptos::prelude::IntoAny::into_any($view))
        }
    };
}
pub(crate) use on_demand_part;

/// Fetches a part's chunk ahead (while the session is restored, or when a link to its page is
/// pointed at), so it is there when shown; a failure is left to the showing, which says so and
/// can try again. A chunk once loaded is not fetched again.
#[cfg(feature = "split")]
pub fn preload<F, E>(load: fn() -> F)
where
    F: Future<Output = Result<(), E>> + 'static,
{
    leptos::task::spawn_local(async move {
        let _ = load().await;
    });
}

/// The view `load` makes, once its chunk is there; the page's placeholder until then, and
/// words with "Try again" when the chunk could not be fetched.
#[cfg(feature = "hydrate")]
pub fn on_demand<F: Future<Output = Part> + 'static>(load: fn() -> F) -> impl IntoView {
    shown_when_loaded(erase(load))
}

#[cfg(feature = "hydrate")]
fn erase<F: Future<Output = Part> + 'static>(load: fn() -> F) -> Load {
    // The browser has one thread: the chunk's future need not be Send.
    Arc::new(move || Box::pin(send_wrapper::SendWrapper::new(load())))
}

/// On the server the guarded part is never rendered (no one is signed in there).
#[cfg(not(feature = "hydrate"))]
pub fn on_demand<F: Future<Output = Part> + Send + 'static>(load: fn() -> F) -> impl IntoView {
    shown_when_loaded(erase(load))
}

#[cfg(not(feature = "hydrate"))]
fn erase<F: Future<Output = Part> + Send + 'static>(load: fn() -> F) -> Load {
    Arc::new(move || Box::pin(load()))
}

/// A part of a page the server renders as a placeholder (a public page's form few visitors
/// use): the page hydrates with the placeholder, then loads the part once it runs.
#[cfg(feature = "hydrate")]
pub fn once_running<F: Future<Output = Part> + 'static>(load: fn() -> F) -> impl IntoView {
    shown_once_running(erase(load))
}

/// On the server: the placeholder (the part is never loaded there).
#[cfg(not(feature = "hydrate"))]
pub fn once_running<F: Future<Output = Part> + Send + 'static>(load: fn() -> F) -> impl IntoView {
    shown_once_running(erase(load))
}

fn shown_once_running(load: Load) -> impl IntoView {
    after_hydration(move || shown_when_loaded(load.clone()))
}

fn after_hydration<V: IntoView + 'static>(
    part: impl Fn() -> V + Send + Sync + 'static,
) -> impl IntoView {
    let running = RwSignal::new(false);
    // Effects run only in the browser, after hydration: the server and the hydrating
    // browser both render the placeholder.
    Effect::new(move |_| running.set(true));
    move || {
        if running.get() {
            leptos::either::Either::Left(part())
        } else {
            leptos::either::Either::Right(
                view! { <p class="placeholder" aria-busy="true">"Loading…"</p> },
            )
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shown {
    Waiting,
    Loaded,
    Unavailable,
}

fn shown_when_loaded(load: Load) -> impl IntoView {
    let shown = RwSignal::new(Shown::Waiting);
    // Each "Try again" begins a new load; a failed fetch is not remembered. While it runs
    // the message and the button stay (the button keeps the focus), the button saying so.
    let attempt = RwSignal::new(0u32);
    let retrying = RwSignal::new(false);
    let status = move || match shown.get() {
        Shown::Waiting => {
            EitherOf3::A(view! { <p class="placeholder" aria-busy="true">"Loading…"</p> })
        }
        Shown::Loaded => EitherOf3::B(()),
        Shown::Unavailable => EitherOf3::C(view! {
            <p class="form-error" role="alert">
                "This part of the page could not be loaded. Check your connection and try again, \
                 or reload the page."
            </p>
            <button type="button" aria-disabled=move || retrying.get().to_string()
                on:click=move |_| {
                    if !retrying.get_untracked() {
                        retrying.set(true);
                        attempt.update(|n| *n += 1);
                    }
                }>
                {move || if retrying.get() { "Trying again…" } else { "Try again" }}
            </button>
        }),
    };
    let content = move || {
        attempt.track();
        let load = load.clone();
        Suspend::new(async move {
            let part = load().await;
            retrying.set(false);
            match part {
                Ok(view) => {
                    shown.set(Shown::Loaded);
                    view
                }
                Err(ChunkUnavailable) => {
                    shown.set(Shown::Unavailable);
                    ().into_any()
                }
            }
        })
    };
    view! {
        {status}
        {content}
    }
}
