use crate::auth::{use_auth, AuthState};
use leptos::{either::EitherOf3, prelude::*, task::spawn_local};
use leptos_router::{components::A, hooks::use_navigate};

/// The site header of every page. While the session is being restored it shows neither the
/// sign-in links nor a name, so a signed-in person never sees signed-out content. On narrow
/// screens the links fold behind a menu button.
#[component]
pub fn Header() -> impl IntoView {
    let auth = use_auth();
    let (open, set_open) = signal(false);
    let navigate = use_navigate();
    let pending = RwSignal::new(false);
    let logout = move |_| {
        pending.set(true);
        let navigate = navigate.clone();
        // Leave a protected page first, so it does not take the sign-out for an expired
        // session and send the person to the login page.
        navigate("/", Default::default());
        spawn_local(async move {
            auth.logout().await;
            pending.set(false);
        });
    };

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
                {move || match auth.state.get() {
                    AuthState::Restoring => EitherOf3::A(view! { <span class="nav-pending" aria-busy="true"></span> }),
                    AuthState::SignedOut => EitherOf3::B(view! {
                        <A href="/login">"Log in"</A>
                        <A href="/register" attr:class="button">"Create account"</A>
                    }),
                    AuthState::SignedIn(user) => {
                        let logout = logout.clone();
                        let admin = (user.role == crate::api::Role::Admin)
                            .then(|| view! { <A href="/admin">"Admin"</A> });
                        EitherOf3::C(view! {
                            {admin}
                            <A href="/account" attr:class="user-name">{user.name}</A>
                            <button type="button" on:click=logout disabled=move || pending.get()>"Log out"</button>
                        })
                    }
                }}
            </nav>
        </header>
    }
}
