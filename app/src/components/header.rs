use crate::auth::{use_auth, ApiFailure, AuthState};
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
    let failed = RwSignal::new(None::<String>);
    let logout = move |_| {
        pending.set(true);
        failed.set(None);
        let navigate = navigate.clone();
        let person = match auth.state.get_untracked() {
            AuthState::SignedIn(user) => Some(user.id),
            _ => None,
        };
        spawn_local(async move {
            // Retried a few times (the server may be restarting); the person stays signed
            // in, and is told so, until the server has ended the session. Only while the
            // same person is signed in: never someone who signed in meanwhile.
            let same_person = move || {
                matches!(auth.state.get_untracked(),
                    AuthState::SignedIn(u) if Some(&u.id) == person.as_ref())
            };
            // Not sent because its session was over or replaced meanwhile: nothing to retry.
            let moot =
                |outcome: &Result<(), ApiFailure>| matches!(outcome, Err(ApiFailure::SignedOut));
            let mut outcome = auth.logout().await;
            for delay_ms in [1_000, 2_000] {
                if outcome.is_ok() || moot(&outcome) || !same_person() {
                    break;
                }
                failed.set(Some(
                    "Signing out did not reach the server yet. Retrying…".into(),
                ));
                sleep_ms(delay_ms).await;
                if !same_person() {
                    break;
                }
                outcome = auth.logout().await;
            }
            pending.set(false);
            if outcome.is_err() && (moot(&outcome) || !same_person()) {
                // Signed out, someone else signed in, or the session replaced, elsewhere
                // meanwhile.
                failed.set(None);
                return;
            }
            match outcome {
                Ok(()) => {
                    failed.set(None);
                    navigate("/", Default::default());
                }
                Err(_) => failed.set(Some(
                    "You are still signed in: the server could not be reached. Try again.".into(),
                )),
            }
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
            {move || auth.reconnecting.get().then(|| view! {
                <p class="reconnecting" role="status">"Reconnecting…"</p>
            })}
            {move || failed.get().map(|message| view! {
                <p class="sign-out-error" role="alert">{message}</p>
            })}
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
                            .then(|| view! {
                                <A href="/admin"
                                    on:pointerenter=|_| crate::pages::admin::preload_admin()
                                    on:focus=|_| crate::pages::admin::preload_admin()>
                                    "Admin"
                                </A>
                            });
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

/// Resolves after `ms` milliseconds (never, on the server, where nothing calls it).
async fn sleep_ms(ms: u64) {
    #[cfg(feature = "hydrate")]
    {
        let (done, wait) = futures::channel::oneshot::channel::<()>();
        let _ = set_timeout_with_handle(
            move || {
                let _ = done.send(());
            },
            std::time::Duration::from_millis(ms),
        );
        let _ = wait.await;
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = ms;
}
