//! `/forgot-password` and `/reset-password`: a reset link by mail, then a new password.
//! Few visitors ever see them, so their forms are parts loaded on demand once the page runs
//! (`components::on_demand`): the server renders the heading and a placeholder.

use crate::{
    api::{
        endpoints::{FORGOT_PASSWORD, RESET_PASSWORD},
        ErrorCode, ForgotPasswordRequest, ResetPasswordRequest,
    },
    auth::{use_auth, ApiFailure},
    components::{
        field::{Field, FormError},
        form::FormState,
        on_demand::{on_demand_part, once_running},
    },
};
use leptos::{either::Either, prelude::*};
use leptos_router::components::A;

#[component]
pub fn ForgotPasswordPage() -> impl IntoView {
    #[cfg(feature = "split")]
    crate::components::on_demand::preload(preload_forgot_form);
    view! {
        <section class="card auth-card">
            <h1>"Reset your password"</h1>
            {once_running(forgot_form)}
            <p class="aside"><A href="/login">"Back to log in"</A></p>
        </section>
    }
}

on_demand_part! {
    /// The form asking for a link: a WASM chunk of its own.
    fn forgot_form, preload preload_forgot_form => view! { <ForgotForm/> }
}

#[component]
fn ForgotForm() -> impl IntoView {
    let auth = use_auth();
    let email = RwSignal::new(String::new());
    let form = FormState::new();
    let sent_to = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let request = ForgotPasswordRequest {
            email: email.get_untracked(),
        };
        let address = request.email.clone();
        form.send(
            move || async move { auth.call(FORGOT_PASSWORD, &request).await },
            move |()| sent_to.set(Some(address)),
        );
    };

    view! {
            {move || match sent_to.get() {
                Some(address) => Either::Left(view! {
                    <p role="status">
                        "If an account exists for " <strong>{address}</strong>
                        ", we sent it a link to choose a new password. The link works for 30 minutes."
                    </p>
                }),
                None => Either::Right(view! {
                    <p>"Enter the email address of your account and we will send you a link."</p>
                    <form method="post" on:submit=submit novalidate>
                        <FormError message=form.form_error/>
                        <Field label="Email" name="email" input_type="email" autocomplete="email"
                            value=email error=form.field("email")/>
                        <button type="submit" disabled=move || !form.ready()>"Send reset link"</button>
                    </form>
                }),
            }}
    }
}

/// The token arrives in the URL fragment (`#token=…`), which browsers never send to a
/// server; it is read once in the browser and the fragment removed from the address bar.
fn take_token_from_fragment() -> Option<String> {
    #[cfg(feature = "hydrate")]
    {
        let window = window();
        let hash = window.location().hash().ok()?;
        let token = hash.strip_prefix("#token=")?.to_string();
        if let Ok(history) = window.history() {
            let _ = history.replace_state_with_url(
                &wasm_bindgen::JsValue::NULL,
                "",
                Some("/reset-password"),
            );
        }
        Some(token)
    }
    #[cfg(not(feature = "hydrate"))]
    None
}

/// The reset link's token, read from the address by the page (in the main chunk) as soon as
/// it runs, for the form that loads after it.
#[derive(Clone, Copy)]
struct ResetLink(StoredValue<Option<String>>);

#[component]
pub fn ResetPasswordPage() -> impl IntoView {
    #[cfg(feature = "split")]
    crate::components::on_demand::preload(preload_reset_form);
    let link = ResetLink(StoredValue::new(None));
    provide_context(link);
    // In the browser, once, before the form's chunk is fetched: the fragment leaves the
    // address bar (and the history entry) even if the form never loads.
    Effect::new(move |_| link.0.set_value(take_token_from_fragment()));
    view! {
        <section class="card auth-card">
            <h1>"Choose a new password"</h1>
            {once_running(reset_form)}
        </section>
    }
}

on_demand_part! {
    /// The form setting the new password: a WASM chunk of its own.
    fn reset_form, preload preload_reset_form => view! { <ResetForm/> }
}

#[component]
fn ResetForm() -> impl IntoView {
    let auth = use_auth();
    let token = use_context::<ResetLink>().map_or(StoredValue::new(None), |link| link.0);
    let password = RwSignal::new(String::new());
    let form = FormState::new();
    let done = RwSignal::new(false);
    let link_dead = RwSignal::new(false);
    // A link without its token is said to be incomplete at once.
    Effect::new(move |_| {
        if token.with_value(Option::is_none) {
            link_dead.set(true);
            form.form_error.set(Some(
                "This link is incomplete: open the whole link from the email, or ask for a new one."
                    .into(),
            ));
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let request = ResetPasswordRequest {
            token: token.get_value().unwrap_or_default(),
            password: password.get_untracked(),
        };
        form.send(
            move || async move {
                let answer = auth.call(RESET_PASSWORD, &request).await;
                if let Err(ApiFailure::Api {
                    code: ErrorCode::ResetTokenInvalid | ErrorCode::ResetTokenExpired,
                    ..
                }) = answer
                {
                    link_dead.set(true);
                }
                answer
            },
            move |()| {
                done.set(true);
                // Every session of the account whose password changed is over; this
                // browser's (if any, or still being restored) is one of them only when it
                // is signed in to that account, which the link does not say. A refresh sent
                // now tells: a session that ended is forgotten here and in every tab (and
                // its cookie cleared), another person's goes on. (A sign-out would end it
                // whoever it belongs to.)
                leptos::task::spawn_local(async move {
                    auth.recheck().await;
                });
            },
        );
    };

    view! {
            {move || if done.get() {
                Either::Left(view! {
                    <p role="status">"Your password has been changed, and every device signed in to that account was signed out."</p>
                    <p class="aside"><A href="/login">"Log in with your new password"</A></p>
                })
            } else {
                Either::Right(view! {
                    <form method="post" on:submit=submit novalidate>
                        <FormError message=form.form_error/>
                        <Field label="New password" name="password" input_type="password"
                            autocomplete="new-password" value=password error=form.field("password")/>
                        <button type="submit" disabled=move || !form.ready()>"Set new password"</button>
                    </form>
                    <p class="aside" hidden=move || !link_dead.get()>
                        <A href="/forgot-password">"Get a new link"</A>
                    </p>
                })
            }}
    }
}
