use crate::{
    api::{
        endpoints::{RESEND_VERIFICATION, VERIFY_EMAIL},
        VerifyEmailRequest,
    },
    auth::{require_sign_in, use_auth, AuthState},
    components::{
        field::{Field, FormError},
        form::FormState,
        on_demand::{on_demand, on_demand_part},
    },
};
use leptos::{either::EitherOf3, prelude::*};
use leptos_router::{components::A, hooks::use_navigate};

/// `/verify-email`: the 6-digit code mailed at registration, and a way to get a new one.
#[component]
pub fn VerifyEmailPage() -> impl IntoView {
    let signed_in = require_sign_in("/verify-email");
    // Its chunk is fetched now, while the session is restored, not after.
    #[cfg(feature = "split")]
    crate::components::on_demand::preload(preload_code_form);
    let auth = use_auth();
    let verified = move || matches!(auth.state.get(), AuthState::SignedIn(u) if u.email_verified);
    view! {
        <section class="card auth-card">
            <h1>"Verify your email"</h1>
            {move || if signed_in.get().is_none() {
                EitherOf3::A(view! { <p class="placeholder" aria-busy="true">"Loading…"</p> })
            } else if verified() {
                EitherOf3::B(view! {
                    <p role="status">"Your email address is verified."</p>
                    <p class="aside"><A href="/account">"Back to your account"</A></p>
                })
            } else {
                EitherOf3::C(on_demand(code_form))
            }}
        </section>
    }
}

on_demand_part! {
    /// The form: a WASM chunk of its own (`components::on_demand`).
    fn code_form, preload preload_code_form => view! { <CodeForm/> }
}

#[component]
fn CodeForm() -> impl IntoView {
    let auth = use_auth();
    let navigate = use_navigate();
    let code = RwSignal::new(String::new());
    let form = FormState::new();
    let resent = RwSignal::new(None::<String>);
    let email = move || match auth.state.get() {
        AuthState::SignedIn(u) => u.email,
        _ => String::new(),
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        resent.set(None);
        let request = VerifyEmailRequest {
            code: code.get_untracked(),
        };
        let navigate = navigate.clone();
        form.send(
            move || async move { auth.call(VERIFY_EMAIL, &request).await },
            move |user| {
                auth.person_changed(user);
                navigate("/account", Default::default());
            },
        );
    };
    let resend = move |_| {
        resent.set(None);
        form.send(
            move || async move { auth.call(RESEND_VERIFICATION, &()).await },
            move |()| resent.set(Some("A new code is on its way.".into())),
        );
    };

    view! {
        <p>"We sent a 6-digit code to " <strong>{email}</strong> ". It works for 10 minutes."</p>
        <form method="post" on:submit=submit novalidate>
            <FormError message=form.form_error/>
            <Field label="Code" name="code" input_type="text" autocomplete="one-time-code"
                inputmode="numeric" value=code error=form.field("code")/>
            <button type="submit" disabled=move || !form.ready()>"Verify email"</button>
        </form>
        <p class="aside">
            "No code? "
            <button type="button" class="link" on:click=resend disabled=move || !form.ready()>
                "Send a new code"
            </button>
        </p>
        <p role="status">{move || resent.get()}</p>
    }
}
