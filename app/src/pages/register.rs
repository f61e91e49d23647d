use crate::{
    api::RegisterRequest,
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
pub fn RegisterPage() -> impl IntoView {
    let auth = use_auth();
    let name = RwSignal::new(String::new());
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let form = FormState::new();
    let submit = sign_in_on_submit(form, move || {
        let request = RegisterRequest {
            name: name.get_untracked(),
            email: email.get_untracked(),
            password: password.get_untracked(),
        };
        async move { auth.register(&request).await }
    });

    view! {
        <section class="card auth-card">
            <h1>"Create account"</h1>
            <ProviderError/>
            <ProviderButtons/>
            <form method="post" on:submit=submit novalidate>
                <FormError message=form.form_error/>
                <Field label="Name" name="name" input_type="text" autocomplete="name"
                    value=name error=form.field("name")/>
                <Field label="Email" name="email" input_type="email" autocomplete="email"
                    value=email error=form.field("email")/>
                <Field label="Password" name="password" input_type="password" autocomplete="new-password"
                    value=password error=form.field("password")/>
                <p class="hint">"At least 8 characters."</p>
                <button type="submit" disabled=move || !form.ready()>"Create account"</button>
            </form>
            <p class="aside">"Already registered? " <A href="/login">"Sign in"</A></p>
        </section>
    }
}
