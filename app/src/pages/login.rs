//! `/login`: the password (or an identity provider), then, for a person whose second factor
//! is on, "Authentication code" (or a recovery code) on the same page, without a reload.

use crate::{
    api::{ErrorCode, LoginRequest, MfaVerifyRequest},
    auth::{use_auth, ApiFailure},
    components::{
        field::{Field, FormError},
        form::{sign_in_on_click, sign_in_on_submit_or, FormState},
        providers::{ProviderButtons, ProviderError},
    },
};
use leptos::{either::Either, prelude::*};
use leptos_router::components::A;

#[component]
pub fn LoginPage() -> impl IntoView {
    // The second step's token, once the first step asked for it. Both steps' state lives
    // here, on the page, so a step's answer can switch steps safely.
    let mfa_token = RwSignal::new(None::<String>);
    // Why the page went back to the password (the second step ran out).
    let notice = RwSignal::new(None::<String>);
    // After an identity provider, the callback sends the token in the fragment.
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if let Some(token) = take_token_from_fragment() {
            mfa_token.set(Some(token));
        }
    });
    let password = PasswordStep::new(mfa_token);
    let second = SecondStep::new(mfa_token, notice);
    view! {
        <section class="card auth-card">
            <h1>"Log in"</h1>
            {move || match mfa_token.get() {
                None => Either::Left(password.view(notice)),
                Some(token) => Either::Right(second.view(token)),
            }}
        </section>
    }
}

/// `#mfa=<token>` of the address, removed from it (and from the history) once read.
#[cfg(feature = "hydrate")]
fn take_token_from_fragment() -> Option<String> {
    let location = window().location();
    let hash = location.hash().ok()?;
    let token = hash.strip_prefix("#mfa=")?.to_string();
    let rest = format!(
        "{}{}",
        location.pathname().unwrap_or_default(),
        location.search().unwrap_or_default()
    );
    if let Ok(history) = window().history() {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&rest));
    }
    (!token.is_empty()).then_some(token)
}

#[derive(Clone, Copy)]
struct PasswordStep {
    email: RwSignal<String>,
    password: RwSignal<String>,
    form: FormState,
    mfa_token: RwSignal<Option<String>>,
}

impl PasswordStep {
    fn new(mfa_token: RwSignal<Option<String>>) -> PasswordStep {
        PasswordStep {
            email: RwSignal::new(String::new()),
            password: RwSignal::new(String::new()),
            form: FormState::new(),
            mfa_token,
        }
    }

    fn view(self, notice: RwSignal<Option<String>>) -> impl IntoView {
        let auth = use_auth();
        let PasswordStep {
            email,
            password,
            form,
            mfa_token,
        } = self;
        let submit = sign_in_on_submit_or(
            form,
            move || {
                let request = LoginRequest {
                    email: email.get_untracked(),
                    password: password.get_untracked(),
                };
                notice.set(None);
                async move { auth.login(&request).await }
            },
            move |token| {
                password.set(String::new());
                mfa_token.set(Some(token));
            },
        );
        // A passkey is both factors: no password, no second step.
        let passkey = sign_in_on_click(form, move || {
            notice.set(None);
            async move { auth.sign_in_with_passkey().await }
        });
        view! {
            <ProviderError/>
            {move || notice.get().map(|n| view! { <p class="form-error" role="alert">{n}</p> })}
            <ProviderButtons/>
            <form method="post" on:submit=submit novalidate>
                <FormError message=form.form_error/>
                <Field label="Email" name="email" input_type="email" autocomplete="email"
                    value=email error=form.field("email")/>
                <Field label="Password" name="password" input_type="password" autocomplete="current-password"
                    value=password error=form.field("password")/>
                <button type="submit" disabled=move || !form.ready()>"Log in"</button>
            </form>
            <p class="aside">
                <button type="button" class="secondary" on:click=passkey disabled=move || !form.ready()>
                    "Sign in with a passkey"
                </button>
            </p>
            <p class="aside"><A href="/forgot-password">"Forgot your password?"</A></p>
            <p class="aside">"New here? " <A href="/register">"Register"</A></p>
        }
    }
}

#[derive(Clone, Copy)]
struct SecondStep {
    code: RwSignal<String>,
    /// A recovery code instead of the app's code.
    recovery: RwSignal<bool>,
    form: FormState,
    mfa_token: RwSignal<Option<String>>,
    notice: RwSignal<Option<String>>,
}

impl SecondStep {
    fn new(mfa_token: RwSignal<Option<String>>, notice: RwSignal<Option<String>>) -> SecondStep {
        SecondStep {
            code: RwSignal::new(String::new()),
            recovery: RwSignal::new(false),
            form: FormState::new(),
            mfa_token,
            notice,
        }
    }

    fn view(self, token: String) -> impl IntoView {
        let auth = use_auth();
        let SecondStep {
            code,
            recovery,
            form,
            mfa_token,
            notice,
        } = self;
        let submit = sign_in_on_submit_or(
            form,
            move || {
                let typed = code.get_untracked();
                let request = if recovery.get_untracked() {
                    MfaVerifyRequest {
                        mfa_token: token.clone(),
                        code: None,
                        recovery_code: Some(typed),
                    }
                } else {
                    MfaVerifyRequest {
                        mfa_token: token.clone(),
                        code: Some(typed),
                        recovery_code: None,
                    }
                };
                async move {
                    let answer = auth.verify_second_factor(&request).await;
                    // The token ran out (five minutes, or used; five wrong codes answer 429
                    // once, then this): back to the password, saying why. A 429 alone stays
                    // here: the account's budget may renew while the token lives.
                    if let Err(ApiFailure::Api {
                        code: ErrorCode::MfaTokenInvalid,
                        message,
                        ..
                    }) = &answer
                    {
                        notice.set(Some(message.clone()));
                        code.set(String::new());
                        recovery.set(false);
                        mfa_token.set(None);
                    }
                    answer
                }
            },
            |_| {},
        );
        let toggle = move |ev: leptos::ev::MouseEvent| {
            ev.prevent_default();
            code.set(String::new());
            recovery.update(|r| *r = !*r);
        };
        view! {
            <p>
                {move || if recovery.get() {
                    "Enter one of the recovery codes you saved when you set up two-step sign-in."
                } else {
                    "Enter the 6-digit code from your authenticator app."
                }}
            </p>
            <form method="post" on:submit=submit novalidate>
                <FormError message=form.form_error/>
                {move || if recovery.get() {
                    Either::Left(view! {
                        <Field label="Recovery code" name="recovery_code" input_type="text"
                            autocomplete="off" value=code error=form.field("recovery_code")/>
                    })
                } else {
                    Either::Right(view! {
                        <Field label="Authentication code" name="code" input_type="text"
                            autocomplete="one-time-code" inputmode="numeric"
                            value=code error=form.field("code")/>
                    })
                }}
                <button type="submit" disabled=move || !form.ready()>"Verify"</button>
            </form>
            <p class="aside">
                <a href="#" on:click=toggle>
                    {move || if recovery.get() { "Use your authenticator app" } else { "Use a recovery code" }}
                </a>
            </p>
        }
    }
}
