#![recursion_limit = "256"]
//! The Leptos application shared by the server (SSR) and the browser (hydration).

/// The API's types, in a crate of their own (see its documentation for why).
pub use ::api;
pub mod auth;
pub mod components;
pub mod pages;

use components::header::Header;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags};
use leptos_router::{
    components::{FlatRoutes, Route, Router},
    path,
};
use pages::{
    account::AccountPage,
    admin::AdminPage,
    home::HomePage,
    login::LoginPage,
    not_found::NotFound,
    password_reset::{ForgotPasswordPage, ResetPasswordPage},
    register::RegisterPage,
    sessions::SessionsPage,
    verify_email::VerifyEmailPage,
};

/// True once the WASM app has hydrated the page (set by an effect, which runs only then).
#[derive(Clone, Copy)]
pub struct Hydrated(pub ReadSignal<bool>);

/// The whole HTML document, rendered on the server. Scripts carry the request's CSP nonce
/// (`HydrationScripts` reads it from context), so no `unsafe-inline` is ever needed.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let providers = use_context::<components::providers::ProviderList>().unwrap_or_default();
    provide_meta_context();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <title>"JWT auth"</title>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <meta name=components::providers::META_NAME content=providers.to_json()/>
                // The style's file name carries its hash in a hashed release build.
                <HashedStylesheet options=options.clone() id="leptos"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// [`shell`] for the server, its type erased: what the server's `Pages` holds.
#[cfg(feature = "ssr")]
pub fn any_shell(options: LeptosOptions) -> AnyView {
    shell(options).into_any()
}

/// For the server: makes its identity providers known to the page being rendered.
#[cfg(feature = "ssr")]
pub fn provide_providers(providers: Vec<api::ProviderInfo>) {
    provide_context(components::providers::ProviderList(providers));
}

#[component]
pub fn App() -> impl IntoView {
    // Effects run only in the browser, after hydration: the attribute tells tests (and
    // curious people) that the page is now live.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    provide_context(Hydrated(hydrated.read_only()));
    // The server provides the identity providers as context; the browser reads the list it
    // wrote into the page, so both render the same buttons.
    #[cfg(feature = "hydrate")]
    provide_context(components::providers::ProviderList::from_page());
    auth::provide_auth();

    // Every route is a page of its own (none nested): `FlatRoutes` is the simpler router and
    // makes the main WASM about 10 KB (brotli) smaller than `Routes`. It keeps a page's own
    // URL when a navigation lands on the same page by another path (`/login` to `/login/`),
    // so pages read the query from `use_location()`, which always follows the address.
    view! {
        <Router>
            <div class="app" data-hydrated=move || if hydrated.get() { "true" } else { "false" }>
                <Header/>
                <main class="content">
                    <FlatRoutes fallback=NotFound>
                        <Route path=path!("/") view=HomePage/>
                        <Route path=path!("/login") view=LoginPage/>
                        <Route path=path!("/register") view=RegisterPage/>
                        <Route path=path!("/account") view=AccountPage/>
                        <Route path=path!("/account/sessions") view=SessionsPage/>
                        <Route path=path!("/verify-email") view=VerifyEmailPage/>
                        <Route path=path!("/forgot-password") view=ForgotPasswordPage/>
                        <Route path=path!("/reset-password") view=ResetPasswordPage/>
                        <Route path=path!("/admin") view=AdminPage/>
                    </FlatRoutes>
                </main>
            </div>
        </Router>
    }
}
