use crate::{
    api::LoginRequest,
    auth::use_auth,
    components::{
        field::{Field, FormError},
        form::{sign_in_on_submit, FormState},
        providers::{ProviderButtons, ProviderError},
    },
};
use leptos::prelude::*;
use leptos_router::components::A;

#[component]
pub fn LoginPage() -> impl IntoView {
    let auth = use_auth();
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let form = FormState::new();
    let submit = sign_in_on_submit(form, move || {
        let request = LoginRequest {
            email: email.get_untracked(),
            password: password.get_untracked(),
        };
        async move { auth.login(&request).await }
    });

    view! {
        <section class="card auth-card">
            <h1>"Log in"</h1>
            <ProviderError/>
            <ProviderButtons/>
            <form method="post" on:submit=submit novalidate>
                <FormError message=form.form_error/>
                <Field label="Email" name="email" input_type="email" autocomplete="email"
                    value=email error=form.field("email")/>
                <Field label="Password" name="password" input_type="password" autocomplete="current-password"
                    value=password error=form.field("password")/>
                <button type="submit" disabled=move || !form.ready()>"Log in"</button>
            </form>
            <p class="aside"><A href="/forgot-password">"Forgot your password?"</A></p>
            <p class="aside">"New here? " <A href="/register">"Register"</A></p>
        </section>
    }
}
