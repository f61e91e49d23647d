use crate::{
    api::{
        endpoints::{IntoTarget, Target, LIST_SESSIONS, REVOKE_OTHER_SESSIONS, REVOKE_SESSION},
        SessionInfo,
    },
    auth::{require_sign_in, use_auth, ApiFailure},
    components::{
        field::FormError,
        on_demand::{on_demand, on_demand_part},
        providers::ProviderList,
    },
};
use leptos::{
    either::{Either, EitherOf3},
    prelude::*,
    task::spawn_local,
};

/// `/account/sessions`: where the person is signed in, and signing out elsewhere.
#[component]
pub fn SessionsPage() -> impl IntoView {
    let signed_in = require_sign_in("/account/sessions");
    // Its chunk is fetched now, while the session is restored, not after.
    #[cfg(feature = "split")]
    crate::components::on_demand::preload(preload_sessions_content);
    view! {
        <section class="card">
            <h1>"Your sessions"</h1>
            {move || if signed_in.get().is_some() {
                Either::Left(on_demand(sessions_content))
            } else {
                Either::Right(view! { <p class="placeholder" aria-busy="true">"Loading…"</p> })
            }}
        </section>
    }
}

on_demand_part! {
    /// The list: a WASM chunk of its own (`components::on_demand`).
    fn sessions_content, preload preload_sessions_content => view! { <SessionList/> }
}

#[component]
fn SessionList() -> impl IntoView {
    let auth = use_auth();
    let providers = use_context::<ProviderList>().unwrap_or_default();
    let sessions = RwSignal::new(None::<Result<Vec<SessionInfo>, ApiFailure>>);
    let pending = RwSignal::new(false);
    // A failed sign-out keeps the list (the session is still there) and says why.
    let error = RwSignal::new(None::<String>);
    let load = move || {
        spawn_local(async move {
            sessions.set(Some(auth.call(LIST_SESSIONS, &()).await));
            pending.set(false);
        })
    };
    load();
    // One session (`DELETE`), or every other one.
    let end = move |target: Target<(), ()>| {
        pending.set(true);
        error.set(None);
        spawn_local(async move {
            match auth.call(target, &()).await {
                Ok(()) => load(),
                Err(failure) => {
                    error.set(Some(format!(
                        "{} The session is still signed in: try again.",
                        failure.message()
                    )));
                    pending.set(false);
                }
            }
        });
    };

    view! {
        <FormError message=error/>
        {move || match sessions.get() {
            None => EitherOf3::A(view! { <p class="placeholder" aria-busy="true">"Loading…"</p> }),
            Some(Err(failure)) => EitherOf3::B(view! { <p class="form-error" role="alert">{failure.message()}</p> }),
            Some(Ok(list)) => {
                let others = list.iter().any(|s| !s.current);
                EitherOf3::C(view! {
                    <ul class="sessions">
                        {list.into_iter().map(|s| {
                            let label = format!("Sign out {}", s.device);
                            let target = REVOKE_SESSION.with_id(&s.id);
                            view! {
                                <li class="session">
                                    <div>
                                        <strong>{s.device.clone()}</strong>
                                        <span class="hint">
                                            {format!(" · {} · {} · last used {}", signed_in_with(&s.method, &providers), s.ip.clone().unwrap_or_default(), s.last_used_at.replace('T', " ").trim_end_matches('Z'))}
                                        </span>
                                    </div>
                                    {if s.current {
                                        Either::Left(view! { <span class="badge">"This device"</span> })
                                    } else {
                                        Either::Right(view! {
                                            <button type="button" aria-label=label disabled=move || pending.get()
                                                on:click=move |_| end(target.clone())>"Sign out"</button>
                                        })
                                    }}
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                    <button type="button" disabled=move || pending.get() || !others
                        on:click=move |_| end(REVOKE_OTHER_SESSIONS.into_target())>
                        "Sign out all other sessions"
                    </button>
                })
            }
        }}
    }
}

/// How a session began, in words: its `method` is `password`, `passkey` or a provider's id.
fn signed_in_with(method: &str, providers: &ProviderList) -> String {
    let name = match method {
        "password" => "a password",
        "passkey" => "a passkey",
        id => providers
            .0
            .iter()
            .find(|p| p.id == id)
            .map_or(id, |p| p.name.as_str()),
    };
    format!("signed in with {name}")
}
