use crate::{
    api::User,
    auth::{logic::login_url, use_auth, AuthState},
};
use leptos::prelude::*;
use leptos_router::{hooks::use_navigate, NavigateOptions};

/// Signed in only. The server renders a neutral placeholder (it never knows the session);
/// the browser restores the session, then loads the data with the in-memory token.
#[component]
pub fn AccountPage() -> impl IntoView {
    let auth = use_auth();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if auth.state.get() == AuthState::SignedOut {
            navigate(
                &login_url("/account"),
                NavigateOptions {
                    replace: true,
                    ..Default::default()
                },
            );
        }
    });
    view! {
        <section class="card">
            <h1>"Your account"</h1>
            {move || match auth.state.get() {
                AuthState::SignedIn(_) => view! { <AccountPanels/> }.into_any(),
                _ => view! { <p class="placeholder" aria-busy="true">"Loading…"</p> }.into_any(),
            }}
        </section>
    }
}

/// Each panel loads its own data, as the panels of real pages do; when the access token
/// has expired, their concurrent calls share one refresh.
#[component]
fn AccountPanels() -> impl IntoView {
    view! {
        <div class="panels">
            <Panel title="Profile" show=|u: &User| {
                mark("account-data-shown");
                view! {
                <dl>
                    <dt>"Name"</dt><dd data-testid="account-name">{u.name.clone()}</dd>
                    <dt>"Email"</dt><dd data-testid="account-email">{u.email.clone()}</dd>
                </dl>
            }.into_any()}/>
            <Panel title="Access" show=|u: &User| view! {
                <dl>
                    <dt>"Role"</dt><dd data-testid="account-role">{u.role.as_str()}</dd>
                    <dt>"Email verified"</dt><dd>{if u.email_verified { "yes" } else { "not yet" }}</dd>
                </dl>
            }.into_any()/>
            <Panel title="Membership" show=|u: &User| view! {
                <dl>
                    <dt>"Member since"</dt><dd>{u.created_at.get(..10).unwrap_or_default().to_string()}</dd>
                </dl>
            }.into_any()/>
        </div>
    }
}

/// A performance mark, so tests can read when the person's data appeared.
fn mark(_name: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(performance) = window().performance() {
        let _ = performance.mark(_name);
    }
}

#[component]
fn Panel(title: &'static str, show: fn(&User) -> AnyView) -> impl IntoView {
    let auth = use_auth();
    let user = LocalResource::new(move || async move { auth.get::<User>("/api/me").await });
    view! {
        <article class="panel" aria-label=title>
            <h2>{title}</h2>
            <Suspense fallback=|| view! { <p class="placeholder" aria-busy="true">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match user.await {
                        Ok(u) => show(&u),
                        Err(failure) => view! { <p class="form-error" role="alert">{failure.message()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </article>
    }
}
