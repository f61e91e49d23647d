use crate::{
    api::SessionInfo,
    auth::{require_sign_in, use_auth, ApiFailure},
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
    view! {
        <section class="card">
            <h1>"Your sessions"</h1>
            {move || if signed_in.get() {
                Either::Left(view! { <SessionList/> })
            } else {
                Either::Right(view! { <p class="placeholder" aria-busy="true">"Loading…"</p> })
            }}
        </section>
    }
}

#[component]
fn SessionList() -> impl IntoView {
    let auth = use_auth();
    let sessions = RwSignal::new(None::<Result<Vec<SessionInfo>, ApiFailure>>);
    let pending = RwSignal::new(false);
    let load = move || {
        spawn_local(async move {
            sessions.set(Some(auth.get::<Vec<SessionInfo>>("/api/sessions").await));
            pending.set(false);
        })
    };
    load();
    let end = move |path: String, delete: bool| {
        pending.set(true);
        spawn_local(async move {
            let done = if delete {
                auth.delete(&path).await
            } else {
                auth.post::<(), ()>(&path, &()).await
            };
            match done {
                Ok(()) => load(),
                Err(failure) => {
                    sessions.set(Some(Err(failure)));
                    pending.set(false);
                }
            }
        });
    };

    view! {
        {move || match sessions.get() {
            None => EitherOf3::A(view! { <p class="placeholder" aria-busy="true">"Loading…"</p> }),
            Some(Err(failure)) => EitherOf3::B(view! { <p class="form-error" role="alert">{failure.message()}</p> }),
            Some(Ok(list)) => {
                let others = list.iter().any(|s| !s.current);
                EitherOf3::C(view! {
                    <ul class="sessions">
                        {list.into_iter().map(|s| {
                            let label = format!("Sign out {}", s.device);
                            let path = format!("/api/sessions/{}", s.id);
                            view! {
                                <li class="session">
                                    <div>
                                        <strong>{s.device.clone()}</strong>
                                        <span class="hint">
                                            {format!(" · {} · last used {}", s.ip.clone().unwrap_or_default(), s.last_used_at.replace('T', " ").trim_end_matches('Z'))}
                                        </span>
                                    </div>
                                    {if s.current {
                                        Either::Left(view! { <span class="badge">"This device"</span> })
                                    } else {
                                        Either::Right(view! {
                                            <button type="button" aria-label=label disabled=move || pending.get()
                                                on:click=move |_| end(path.clone(), true)>"Sign out"</button>
                                        })
                                    }}
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                    <button type="button" disabled=move || pending.get() || !others
                        on:click=move |_| end("/api/sessions/revoke-others".into(), false)>
                        "Sign out all other sessions"
                    </button>
                })
            }
        }}
    }
}
