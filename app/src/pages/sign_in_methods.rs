//! The account page's "Sign-in methods": a password or not, each linked identity provider
//! with "Disconnect", and "Connect <name>" for the others. Connecting is a navigation: the
//! server hands out a start URL with a one-time ticket, and the provider's callback comes
//! back to `/account` (with `?error=` when it did not work).

use crate::{
    api::{
        endpoints::{LINK_IDENTITY, MY_SIGN_IN_METHODS, UNLINK_IDENTITY},
        SignInMethods,
    },
    auth::{use_auth, ApiFailure},
    components::{
        field::FormError,
        providers::{ProviderError, ProviderList},
    },
};
use leptos::{either::Either, prelude::*, task::spawn_local};

#[component]
pub fn SignInMethodsPanel() -> impl IntoView {
    let auth = use_auth();
    let providers = use_context::<ProviderList>().unwrap_or_default().0;
    let methods = RwSignal::new(None::<Result<SignInMethods, ApiFailure>>);
    let error = RwSignal::new(None::<String>);
    let pending = RwSignal::new(false);
    let latest = super::account::Latest::new();
    let load = move || {
        latest.load_into(
            methods,
            async move { auth.call(MY_SIGN_IN_METHODS, &()).await },
        )
    };
    load();
    // Not while a "Disconnect" or "Connect" is on its way: it loads again itself.
    super::account::on_details_change(move || {
        if !pending.get_untracked() {
            load();
        }
    });
    let name_of = {
        let providers = providers.clone();
        move |id: &str| {
            providers
                .iter()
                .find(|p| p.id == id)
                .map_or_else(|| id.to_string(), |p| p.name.clone())
        }
    };
    let disconnect = move |provider: String| {
        pending.set(true);
        error.set(None);
        spawn_local(async move {
            match auth.call(UNLINK_IDENTITY.with_id(&provider), &()).await {
                Ok(()) => load(),
                Err(failure) => error.set(Some(failure.message())),
            }
            pending.set(false);
        });
    };
    let connect = move |provider: String| {
        pending.set(true);
        error.set(None);
        spawn_local(async move {
            match auth.call(LINK_IDENTITY.with_id(&provider), &()).await {
                // To the provider, and back to this page.
                Ok(answer) => {
                    let _ = window().location().assign(&answer.url);
                }
                Err(failure) => {
                    error.set(Some(failure.message()));
                    pending.set(false);
                }
            }
        });
    };
    view! {
        <h2>"Sign-in methods"</h2>
        <ProviderError/>
        <FormError message=error/>
        {move || match methods.get() {
            None => Either::Left(view! { <p class="placeholder" aria-busy="true">"Loading…"</p> }),
            Some(Err(failure)) => Either::Left(view! { <p class="form-error" role="alert">{failure.message()}</p> }),
            Some(Ok(m)) => {
                let linked: Vec<String> = m.identities.iter().map(|i| i.provider.clone()).collect();
                let others: Vec<_> = providers
                    .iter()
                    .filter(|p| !linked.contains(&p.id))
                    .cloned()
                    .collect();
                Either::Right(view! {
                    <ul class="methods">
                        <li data-testid="password-method">
                            {if m.password_set { "Password: set" } else { "Password: not set (set one with “Forgot your password?”)" }}
                        </li>
                        {m.identities.into_iter().map(|i| {
                            let name = name_of(&i.provider);
                            let provider = i.provider.clone();
                            view! {
                                <li>
                                    <strong>{name.clone()}</strong>
                                    <span class="hint">{format!(" · {}", i.email)}</span>
                                    " "
                                    <button type="button" aria-label=format!("Disconnect {name}")
                                        disabled=move || pending.get()
                                        on:click=move |_| disconnect(provider.clone())>"Disconnect"</button>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                    <div class="connect">
                        {others.into_iter().map(|p| {
                            let id = p.id.clone();
                            view! {
                                <button type="button" disabled=move || pending.get()
                                    on:click=move |_| connect(id.clone())>{format!("Connect {}", p.name)}</button>
                            }
                        }).collect_view()}
                    </div>
                })
            }
        }}
    }
}
