//! The account page's "Two-step sign-in": set up an authenticator app (its QR code, a
//! "Code" field, "Confirm"), then the recovery codes once with "Download"; once on, turn it
//! off or get new recovery codes with a current code. Below it, the person's passkeys:
//! "Add a passkey", and each with "Remove".

use crate::{
    api::{
        encode::percent_encode,
        endpoints::{
            DELETE_PASSKEY, MFA_STATUS, MY_PASSKEYS, NEW_RECOVERY_CODES, TOTP_CONFIRM,
            TOTP_DISABLE, TOTP_SETUP,
        },
        CodeRequest, MfaStatus, PasskeyInfo, TotpSetup,
    },
    auth::{use_auth, ApiFailure},
    components::{
        field::{Field, FormError},
        form::FormState,
    },
};
use leptos::{
    either::{Either, EitherOf3, EitherOf4},
    prelude::*,
    task::spawn_local,
};

/// What the section shows.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Stage {
    Loading,
    Failed(String),
    Off,
    /// Scanning the QR code, then confirming with a first code.
    SettingUp(TotpSetup),
    /// New recovery codes, shown this once.
    Codes(Vec<String>),
    On(MfaStatus),
}

#[component]
pub fn TwoStepPanel() -> impl IntoView {
    let auth = use_auth();
    let stage = RwSignal::new(Stage::Loading);
    // Every change of the stage asks anew: a status asked before it lands too late to count.
    let latest = super::account::Latest::new();
    let show = move |next: Stage| {
        latest.ask();
        stage.set(next);
    };
    let load = move || {
        let asked = latest.ask();
        spawn_local(async move {
            let next = match auth.call(MFA_STATUS, &()).await {
                Ok(status) if status.totp_enabled => Stage::On(status),
                Ok(_) => Stage::Off,
                Err(failure) => Stage::Failed(failure.message()),
            };
            // Unchanged, the section is left as it is (the code field keeps its focus).
            if latest.still(asked) && stage.get_untracked() != next {
                stage.set(next);
            }
        })
    };
    load();
    let code = RwSignal::new(String::new());
    let form = FormState::new();
    // Not while a request of the section is on its way, nor while a setup or the codes
    // shown once are on screen.
    super::account::on_details_change(move || {
        let busy = !untrack(|| form.ready())
            || matches!(stage.get_untracked(), Stage::SettingUp(_) | Stage::Codes(_));
        if !busy {
            load();
        }
    });
    let start = move |_| {
        code.set(String::new());
        form.send(
            move || async move { auth.call(TOTP_SETUP, &()).await },
            move |setup| show(Stage::SettingUp(setup)),
        );
    };
    // Confirm, turn off and new codes each send the code field.
    let send_code = move |then: Action| {
        let request = CodeRequest {
            code: code.get_untracked(),
        };
        match then {
            Action::Confirm => form.send(
                move || async move { auth.call(TOTP_CONFIRM, &request).await },
                move |codes| {
                    code.set(String::new());
                    show(Stage::Codes(codes.recovery_codes));
                },
            ),
            Action::TurnOff => form.send(
                move || async move { auth.call(TOTP_DISABLE, &request).await },
                move |()| {
                    code.set(String::new());
                    show(Stage::Off);
                },
            ),
            Action::NewCodes => form.send(
                move || async move { auth.call(NEW_RECOVERY_CODES, &request).await },
                move |codes| {
                    code.set(String::new());
                    show(Stage::Codes(codes.recovery_codes));
                },
            ),
        }
    };
    view! {
        <section aria-labelledby="two-step-title">
            <h2 id="two-step-title">"Two-step sign-in"</h2>
            {move || match stage.get() {
                Stage::Loading => EitherOf4::A(Either::Left(
                    view! { <p class="placeholder" aria-busy="true">"Loading…"</p> },
                )),
                Stage::Failed(message) => EitherOf4::A(Either::Right(
                    view! { <p class="form-error" role="alert">{message}</p> },
                )),
                Stage::Off => EitherOf4::B(view! {
                    <p>"Sign-in asks only for your password. Add a code from an authenticator app for more safety."</p>
                    <FormError message=form.form_error/>
                    <button type="button" on:click=start disabled=move || !form.ready()>
                        "Set up authenticator app"
                    </button>
                }),
                Stage::SettingUp(setup) => EitherOf4::C(view! {
                    <p>"Scan this QR code with your authenticator app, then enter the code it shows."</p>
                    // Drawn by the server from the setup's otpauth:// URI.
                    <div class="qr" role="img" aria-label="QR code for your authenticator app"
                        inner_html=setup.qr_svg></div>
                    <p class="aside">"Or enter this key by hand: "
                        <code data-testid="totp-secret">{setup.secret}</code>
                    </p>
                    <form class="narrow" method="post" novalidate
                        on:submit=move |ev| {
                            ev.prevent_default();
                            send_code(Action::Confirm);
                        }>
                        <FormError message=form.form_error/>
                        <Field label="Code" name="code" input_type="text" inputmode="numeric"
                            autocomplete="one-time-code" value=code error=form.field("code")/>
                        <button type="submit" disabled=move || !form.ready()>"Confirm"</button>
                    </form>
                }),
                Stage::Codes(codes) => EitherOf4::D(Either::Left(recovery_codes(codes, load))),
                Stage::On(status) => EitherOf4::D(Either::Right(view! {
                    <p data-testid="two-step-status">
                        {format!(
                            "Two-step sign-in is on. {} recovery codes left.",
                            status.recovery_codes_left
                        )}
                    </p>
                    <form class="narrow" method="post" novalidate
                        on:submit=move |ev| {
                            ev.prevent_default();
                            send_code(Action::TurnOff);
                        }>
                        <FormError message=form.form_error/>
                        <Field label="Code from your app, or a recovery code" name="code"
                            input_type="text" autocomplete="one-time-code" value=code
                            error=form.field("code")/>
                        <button type="submit" disabled=move || !form.ready()>"Turn off two-step sign-in"</button>
                        <button type="button" disabled=move || !form.ready()
                            on:click=move |_| send_code(Action::NewCodes)>
                            "New recovery codes"
                        </button>
                    </form>
                })),
            }}
            <Passkeys/>
        </section>
    }
}

/// The person's passkeys: each signs them in alone (it is both factors).
#[component]
fn Passkeys() -> impl IntoView {
    let auth = use_auth();
    let list = RwSignal::new(None::<Result<Vec<PasskeyInfo>, ApiFailure>>);
    let latest = super::account::Latest::new();
    let load = move || latest.load_into(list, async move { auth.call(MY_PASSKEYS, &()).await });
    load();
    let name = RwSignal::new(String::new());
    let form = FormState::new();
    // A proven address takes the passkeys of whoever registered it. Not while an "Add" or
    // "Remove" is on its way: it loads again itself.
    super::account::on_details_change(move || {
        if untrack(|| form.ready()) {
            load();
        }
    });
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let chosen = name.get_untracked();
        form.send(
            move || async move { auth.add_passkey(chosen).await },
            move |_| {
                name.set(String::new());
                load();
            },
        );
    };
    let remove = move |id: String| {
        form.send(
            move || async move { auth.call(DELETE_PASSKEY.with_id(&id), &()).await },
            move |()| load(),
        );
    };
    view! {
        <h3>"Passkeys"</h3>
        <p>"A passkey signs you in with your device's screen lock or security key, without a password or code."</p>
        {move || match list.get() {
            None => EitherOf3::A(view! { <p class="placeholder" aria-busy="true">"Loading…"</p> }),
            Some(Err(failure)) => EitherOf3::B(view! { <p class="form-error" role="alert">{failure.message()}</p> }),
            Some(Ok(passkeys)) => EitherOf3::C(view! {
                <ul class="passkeys" data-testid="passkeys">
                    {passkeys.into_iter().map(|p| {
                        // The button's name is "Remove"; which passkey, its description.
                        let name_id = format!("passkey-{}", p.id);
                        let id = p.id.clone();
                        view! {
                            <li>
                                <span id=name_id.clone()>{p.name}</span>" "
                                <span class="aside">{format!("added {}", p.created_at.get(..10).unwrap_or_default())}</span>" "
                                <button type="button" aria-describedby=name_id disabled=move || !form.ready()
                                    on:click=move |_| remove(id.clone())>"Remove"</button>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            }),
        }}
        <form class="narrow" method="post" novalidate on:submit=add>
            <FormError message=form.form_error/>
            <Field label="Passkey name" name="passkey_name" input_type="text" autocomplete="off"
                value=name error=form.field("name")/>
            <button type="submit" disabled=move || !form.ready()>"Add a passkey"</button>
        </form>
    }
}

#[derive(Clone, Copy)]
enum Action {
    Confirm,
    TurnOff,
    NewCodes,
}

/// The recovery codes, this once: a list, "Download" (a text file), and "Done".
fn recovery_codes(codes: Vec<String>, done: impl Fn() + 'static) -> impl IntoView {
    let file = format!(
        "Recovery codes for two-step sign-in. Each works once.\n\n{}\n",
        codes.join("\n")
    );
    let href = format!("data:text/plain;charset=utf-8,{}", percent_encode(&file));
    view! {
        <p role="status">
            "Two-step sign-in is on. Save these recovery codes somewhere safe: each one signs you in once if you lose your authenticator app. They are shown only now."
        </p>
        <ul class="recovery-codes" data-testid="recovery-codes">
            {codes.into_iter().map(|c| view! { <li><code>{c}</code></li> }).collect_view()}
        </ul>
        <p>
            <a class="button" href=href download="recovery-codes.txt">"Download"</a>
            " "
            <button type="button" on:click=move |_| done()>"Done"</button>
        </p>
    }
}
