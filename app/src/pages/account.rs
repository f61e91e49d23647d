use crate::{
    api::{
        endpoints::{CHANGE_PASSWORD, ME},
        ChangePasswordRequest, User,
    },
    auth::{require_sign_in, use_auth, ApiFailure},
    components::{
        field::{Field, FormError},
        form::FormState,
        on_demand::{on_demand, on_demand_part},
    },
};
use leptos::{
    either::{Either, EitherOf3},
    prelude::*,
};
use leptos_router::components::A;

/// Signed in only. The server renders a neutral placeholder (it never knows the session);
/// the browser restores the session, then loads the data with the in-memory token.
#[component]
pub fn AccountPage() -> impl IntoView {
    let signed_in = require_sign_in("/account");
    // Built again only for another person: a change of this person's details (a verified
    // email, a new role) must not take what the page shows once (recovery codes), a setup
    // under way or what is typed. The panels of their details reload by themselves.
    let person = Memo::new(move |_| signed_in.get().map(|u| u.id));
    provide_context(Details(signed_in));
    // Its chunk is fetched now, while the session is restored, not after.
    #[cfg(feature = "split")]
    crate::components::on_demand::preload(preload_account_content);
    view! {
        <section class="card">
            <h1>"Your account"</h1>
            {move || if person.get().is_some() {
                Either::Left(on_demand(account_content))
            } else {
                Either::Right(view! { <p class="placeholder" aria-busy="true">"Loading…"</p> })
            }}
        </section>
    }
}

on_demand_part! {
    /// The signed-in part of the page: a WASM chunk of its own (`components::on_demand`).
    fn account_content, preload preload_account_content => view! {
        <AccountPanels/>
        <p class="aside"><A href="/account/sessions">"Manage your sessions"</A></p>
        <super::sign_in_methods::SignInMethodsPanel/>
        <super::two_step::TwoStepPanel/>
        <ChangePassword/>
    }
}

/// The person signed in, as the page's guard has them: what the panels reload with. (A memo
/// of its own, made inside the part while its chunk loads, was seen not to update.)
#[derive(Clone, Copy)]
pub(crate) struct Details(Memo<Option<User>>);

/// Loads of a panel where the last one asked wins: an answer that lands after a later load
/// was asked (or the panel changed by itself meanwhile: `ask` again) is dropped, so a reload
/// for the person's details cannot overwrite what a "Remove" or "Disconnect" loaded after it.
#[derive(Clone, Copy)]
pub(crate) struct Latest(StoredValue<u32>);

impl Latest {
    pub(crate) fn new() -> Latest {
        Latest(StoredValue::new(0))
    }

    /// A new load (or change) begins; older answers no longer count.
    pub(crate) fn ask(&self) -> u32 {
        self.0.update_value(|n| *n = n.wrapping_add(1));
        self.0.get_value()
    }

    /// Whether the load `asked` is still the latest.
    pub(crate) fn still(&self, asked: u32) -> bool {
        self.0.get_value() == asked
    }

    /// A new load: `fetch`'s answer goes into `into`, unless a later load was asked before
    /// it landed.
    pub(crate) fn load_into<T: Send + Sync + 'static>(
        self,
        into: RwSignal<Option<T>>,
        fetch: impl std::future::Future<Output = T> + 'static,
    ) {
        let asked = self.ask();
        leptos::task::spawn_local(async move {
            let answer = fetch.await;
            if self.still(asked) {
                into.set(Some(answer));
            }
        });
    }
}

/// Runs `reload` each time the person's details change (not when the page is built): a
/// panel whose data may change with them, e.g. a provider's sign-in that proved the address
/// and so removed the password and second factor set by whoever registered it.
pub(crate) fn on_details_change(reload: impl Fn() + 'static) {
    if let Some(Details(details)) = use_context::<Details>() {
        Effect::new(move |seen: Option<()>| {
            details.track();
            if seen.is_some() {
                reload();
            }
        });
    }
}

/// Each panel loads its own data, as the panels of real pages do; when the access token
/// has expired, their concurrent calls share one refresh. They load again when the person's
/// details change (here or in another tab), never at a token refresh.
#[component]
fn AccountPanels() -> impl IntoView {
    let Details(details) = expect_context::<Details>();
    move || {
        details.track();
        view! {
            <div class="panels">
                <Panel kind=PanelKind::Profile/>
                <Panel kind=PanelKind::Access/>
                <Panel kind=PanelKind::Membership/>
            </div>
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PanelKind {
    Profile,
    Access,
    Membership,
}

/// Branches are `Either`s rather than `AnyView`s: type erasure costs WASM size.
fn panel_body(kind: PanelKind, u: &User) -> impl IntoView {
    match kind {
        PanelKind::Profile => {
            mark("account-data-shown");
            EitherOf3::A(view! {
                <dl>
                    <dt>"Name"</dt><dd data-testid="account-name">{u.name.clone()}</dd>
                    <dt>"Email"</dt><dd data-testid="account-email">{u.email.clone()}</dd>
                </dl>
            })
        }
        PanelKind::Access => EitherOf3::B(view! {
            <dl>
                <dt>"Role"</dt><dd data-testid="account-role">{u.role.as_str()}</dd>
                <dt>"Email verified"</dt>
                <dd data-testid="account-verified">
                    {if u.email_verified {
                        Either::Left("yes")
                    } else {
                        Either::Right(view! { "not yet · " <A href="/verify-email">"Verify your email"</A> })
                    }}
                </dd>
            </dl>
        }),
        PanelKind::Membership => EitherOf3::C(view! {
            <dl>
                <dt>"Member since"</dt><dd>{u.created_at.get(..10).unwrap_or_default().to_string()}</dd>
            </dl>
        }),
    }
}

/// A performance mark, so tests can read when the person's data appeared.
fn mark(_name: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(performance) = window().performance() {
        let _ = performance.mark(_name);
    }
}

#[component]
fn Panel(kind: PanelKind) -> impl IntoView {
    let auth = use_auth();
    // A signal filled by a task, rather than a resource under `<Suspense>`: the async
    // resource machinery cost more WASM than the whole of this page.
    let user = RwSignal::new(None::<Result<User, ApiFailure>>);
    leptos::task::spawn_local(async move { user.set(Some(auth.call(ME, &()).await)) });
    let title = match kind {
        PanelKind::Profile => "Profile",
        PanelKind::Access => "Access",
        PanelKind::Membership => "Membership",
    };
    view! {
        <article class="panel" aria-label=title>
            <h2>{title}</h2>
            {move || match user.get() {
                None => EitherOf3::A(view! { <p class="placeholder" aria-busy="true">"Loading…"</p> }),
                Some(Ok(u)) => EitherOf3::B(panel_body(kind, &u)),
                Some(Err(failure)) => EitherOf3::C(view! { <p class="form-error" role="alert">{failure.message()}</p> }),
            }}
        </article>
    }
}

/// Changing the password needs the current one; every other session ends, this one goes on.
#[component]
fn ChangePassword() -> impl IntoView {
    let auth = use_auth();
    let current = RwSignal::new(String::new());
    let new = RwSignal::new(String::new());
    let form = FormState::new();
    let changed = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        changed.set(false);
        let request = ChangePasswordRequest {
            current_password: current.get_untracked(),
            new_password: new.get_untracked(),
        };
        form.send(
            move || async move { auth.call(CHANGE_PASSWORD, &request).await },
            move |()| {
                current.set(String::new());
                new.set(String::new());
                changed.set(true);
            },
        );
    };
    view! {
        <h2>"Change password"</h2>
        <form class="narrow" method="post" on:submit=submit novalidate>
            <FormError message=form.form_error/>
            <Field label="Current password" name="current_password" input_type="password"
                autocomplete="current-password" value=current error=form.field("current_password")/>
            <Field label="New password" name="new_password" input_type="password"
                autocomplete="new-password" value=new error=form.field("new_password")/>
            <button type="submit" disabled=move || !form.ready()>"Change password"</button>
            <p role="status">
                {move || changed.get().then_some("Your password was changed. Your other sessions were signed out.")}
            </p>
        </form>
    }
}
