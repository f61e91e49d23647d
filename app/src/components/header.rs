use leptos::prelude::*;
use leptos_router::components::A;

/// The site header of the spec's pages table. On narrow screens the links fold behind a
/// menu button, which is also the first thing that proves the page is interactive.
#[component]
pub fn Header() -> impl IntoView {
    let (open, set_open) = signal(false);

    view! {
        <header class="site-header">
            <A href="/" attr:class="brand">"JWT auth"</A>
            <button
                type="button"
                class="menu-toggle"
                aria-controls="site-nav"
                aria-expanded=move || if open.get() { "true" } else { "false" }
                on:click=move |_| set_open.update(|o| *o = !*o)
            >
                "Menu"
            </button>
            <nav id="site-nav" class="site-nav" class:open=open aria-label="Account">
                <A href="/login">"Log in"</A>
                <A href="/register" attr:class="button">"Create account"</A>
            </nav>
        </header>
    }
}
