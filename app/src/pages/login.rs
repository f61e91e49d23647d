use crate::{
    api::LoginRequest,
    auth::{logic::safe_next, use_auth},
    components::field::{Field, FormError},
    pages::form::FormState,
};
use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};
use leptos_router::{
    components::A,
    hooks::{use_navigate, use_query_map},
};

#[component]
pub fn LoginPage() -> impl IntoView {
    let auth = use_auth();
    let query = use_query_map();
    let navigate = use_navigate();
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let form = FormState::new();

    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if !form.begin() {
            return;
        }
        let request = LoginRequest {
            email: email.get_untracked(),
            password: password.get_untracked(),
        };
        let next = safe_next(query.get_untracked().get("next").as_deref());
        let navigate = navigate.clone();
        spawn_local(async move {
            match auth.login(&request).await {
                Ok(()) => navigate(&next, Default::default()),
                Err(failure) => form.fail(failure),
            }
        });
    };

    view! {
        <section class="card auth-card">
            <h1>"Log in"</h1>
            <form method="post" on:submit=submit novalidate>
                <FormError message=form.form_error/>
                <Field label="Email" name="email" input_type="email" autocomplete="email"
                    value=email error=form.field("email")/>
                <Field label="Password" name="password" input_type="password" autocomplete="current-password"
                    value=password error=form.field("password")/>
                <button type="submit" disabled=move || !form.ready()>"Log in"</button>
            </form>
            <p class="aside">"New here? " <A href="/register">"Register"</A></p>
        </section>
    }
}
