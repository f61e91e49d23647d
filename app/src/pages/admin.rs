//! `/admin`: people (search, role, enable or disable, sign out everywhere) and the audit
//! log. The server enforces every rule (admins only, the last active admin); this page
//! shows its answers.

use crate::{
    api::{
        endpoints::{
            ADMIN_AUDIT_LOG, ADMIN_LIST_USERS, ADMIN_RESET_MFA, ADMIN_REVOKE_USER_SESSIONS,
            ADMIN_UPDATE_USER,
        },
        AdminUser, AuditEntry, AuditQuery, Role, UpdateUserRequest, UserListQuery, UserPage,
    },
    auth::{require_sign_in, use_auth, ApiFailure, AuthState},
    components::{
        field::FormError,
        on_demand::{on_demand, on_demand_part},
    },
};
use leptos::{either::EitherOf3, prelude::*, task::spawn_local};

const PER_PAGE: u32 = 20;

#[component]
pub fn AdminPage() -> impl IntoView {
    let signed_in = require_sign_in("/admin");
    // Its chunk is fetched only once the person is known to be an admin (here, or ahead
    // by the header's link: `preload_admin`), never for anyone else.
    let auth = use_auth();
    let is_admin =
        move || matches!(auth.state.get(), AuthState::SignedIn(u) if u.role == Role::Admin);
    view! {
        <section class="card wide">
            <h1>"Admin"</h1>
            {move || if signed_in.get().is_none() {
                EitherOf3::A(view! { <p class="placeholder" aria-busy="true">"Loading…"</p> })
            } else if is_admin() {
                EitherOf3::B(on_demand(admin_content))
            } else {
                EitherOf3::C(view! { <p class="form-error" role="alert">"Only admins can see this page."</p> })
            }}
        </section>
    }
}

/// Fetches the admin chunk ahead: the header calls it when an admin points at or focuses
/// its "Admin" link, so the page is ready by the click.
pub fn preload_admin() {
    #[cfg(feature = "split")]
    crate::components::on_demand::preload(preload_admin_content);
}

on_demand_part! {
    /// What an admin sees: a WASM chunk of its own (`components::on_demand`).
    fn admin_content, preload preload_admin_content => view! { <People/> <AuditLog/> }
}

#[component]
fn People() -> impl IntoView {
    let auth = use_auth();
    let query = RwSignal::new(String::new());
    let page_number = RwSignal::new(1u32);
    let people = RwSignal::new(None::<Result<UserPage, ApiFailure>>);
    let error = RwSignal::new(None::<String>);
    let pending = RwSignal::new(false);
    // Answers can come back out of order (a search typed while a page loads): only the
    // latest request's answer is shown.
    let latest = StoredValue::new(0u32);
    let load = move || {
        let request = UserListQuery {
            page: Some(page_number.get_untracked()),
            per_page: Some(PER_PAGE),
            q: Some(query.get_untracked()),
        };
        latest.update_value(|n| *n += 1);
        let this = latest.get_value();
        spawn_local(async move {
            let answer = auth.call(ADMIN_LIST_USERS, &request).await;
            if latest.get_value() == this {
                people.set(Some(answer));
            }
        });
    };
    load();
    let search = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        page_number.set(1);
        load();
    };
    let turn = move |by: i32| {
        page_number.update(|p| *p = p.saturating_add_signed(by).max(1));
        load();
    };
    // One change at a time, to the person `id`. The answer (or the refusal, e.g.
    // `last_admin`) is shown.
    let act = move |id: String, change: Change| {
        if pending.get_untracked() {
            return;
        }
        pending.set(true);
        error.set(None);
        spawn_local(async move {
            let done = match change {
                Change::Update(change) => auth
                    .call(ADMIN_UPDATE_USER.with_id(&id), &change)
                    .await
                    .map(|_| ()),
                Change::SignOutEverywhere => {
                    auth.call(ADMIN_REVOKE_USER_SESSIONS.with_id(&id), &())
                        .await
                }
                Change::TwoStepOff => auth.call(ADMIN_RESET_MFA.with_id(&id), &()).await,
            };
            if let Err(failure) = done {
                error.set(Some(failure.message()));
            }
            pending.set(false);
            load();
        });
    };

    view! {
        <h2>"People"</h2>
        <form class="search" role="search" on:submit=search>
            <label for="people-search">"Search people"</label>
            <input id="people-search" type="search" name="q"
                prop:value=move || query.get() on:input=move |ev| query.set(event_target_value(&ev))/>
            <button type="submit">"Search"</button>
        </form>
        <FormError message=error/>
        {move || match people.get() {
            None => EitherOf3::A(view! { <p class="placeholder" aria-busy="true">"Loading…"</p> }),
            Some(Err(failure)) => EitherOf3::B(view! { <p class="form-error" role="alert">{failure.message()}</p> }),
            Some(Ok(page)) => {
                let shown_to = (page.page - 1) * page.per_page + page.users.len() as u32;
                let more = u64::from(shown_to) < page.total;
                let first = page.page == 1;
                EitherOf3::C(view! {
                    <div class="table-wrap">
                        <table class="people">
                            <thead><tr>
                                <th scope="col">"Email"</th><th scope="col">"Name"</th>
                                <th scope="col">"Role"</th><th scope="col">"Status"</th>
                                <th scope="col">"Actions"</th>
                            </tr></thead>
                            <tbody>
                                {page.users.into_iter().map(|person| person_row(person, act, pending)).collect_view()}
                            </tbody>
                        </table>
                    </div>
                    <p class="pager">
                        <span>{format!("{} people", page.total)}</span>
                        <button type="button" disabled=first on:click=move |_| turn(-1)>"Previous"</button>
                        <button type="button" disabled=!more on:click=move |_| turn(1)>"Next"</button>
                    </p>
                })
            }
        }}
    }
}

/// What an admin does to a person.
#[derive(Clone)]
enum Change {
    /// Their role or access.
    Update(UpdateUserRequest),
    SignOutEverywhere,
    /// Their second factor off (they lost their authenticator and recovery codes).
    TwoStepOff,
}

fn person_row(
    person: AdminUser,
    act: impl Fn(String, Change) + Copy + 'static,
    pending: RwSignal<bool>,
) -> impl IntoView {
    let id = person.user.id.clone();
    let email = person.user.email.clone();
    let is_admin = person.user.role == Role::Admin;
    let role_change = UpdateUserRequest {
        role: Some(if is_admin { Role::User } else { Role::Admin }),
        active: None,
    };
    let active_change = UpdateUserRequest {
        role: None,
        active: Some(!person.active),
    };
    let role_label = if is_admin { "Make user" } else { "Make admin" };
    let active_label = if person.active { "Disable" } else { "Enable" };
    let (id_for_role, id_for_active, id_for_mfa) = (id.clone(), id.clone(), id.clone());
    view! {
        <tr data-email=email.clone()>
            <td>{email.clone()}</td>
            <td>{person.user.name.clone()}</td>
            <td>{person.user.role.as_str()}</td>
            <td>
                {if person.active { "active" } else { "disabled" }}
                {if person.user.email_verified { "" } else { " · unverified" }}
            </td>
            <td class="actions">
                <button type="button" aria-label=format!("{role_label} {email}") disabled=move || pending.get()
                    on:click=move |_| act(id_for_role.clone(), Change::Update(role_change.clone()))>{role_label}</button>
                <button type="button" aria-label=format!("{active_label} {email}") disabled=move || pending.get()
                    on:click=move |_| act(id_for_active.clone(), Change::Update(active_change.clone()))>{active_label}</button>
                <button type="button" aria-label=format!("Sign out {email} everywhere") disabled=move || pending.get()
                    on:click=move |_| act(id.clone(), Change::SignOutEverywhere)>"Sign out everywhere"</button>
                <button type="button" aria-label=format!("Turn off two-step sign-in for {email}") disabled=move || pending.get()
                    on:click=move |_| act(id_for_mfa.clone(), Change::TwoStepOff)>"Turn off two-step sign-in"</button>
            </td>
        </tr>
    }
}

#[component]
fn AuditLog() -> impl IntoView {
    let auth = use_auth();
    let entries = RwSignal::new(None::<Result<Vec<AuditEntry>, ApiFailure>>);
    let load = move || {
        spawn_local(async move {
            let request = AuditQuery {
                page: None,
                per_page: Some(50),
            };
            entries.set(Some(auth.call(ADMIN_AUDIT_LOG, &request).await));
        })
    };
    load();
    view! {
        <h2>"Audit log"</h2>
        <p class="aside"><button type="button" class="link" on:click=move |_| load()>"Refresh the log"</button></p>
        {move || match entries.get() {
            None => EitherOf3::A(view! { <p class="placeholder" aria-busy="true">"Loading…"</p> }),
            Some(Err(failure)) => EitherOf3::B(view! { <p class="form-error" role="alert">{failure.message()}</p> }),
            Some(Ok(list)) => EitherOf3::C(view! {
                <div class="table-wrap">
                    <table class="audit" aria-label="Audit log">
                        <thead><tr>
                            <th scope="col">"When"</th><th scope="col">"Event"</th>
                            <th scope="col">"By"</th><th scope="col">"Account"</th>
                            <th scope="col">"IP"</th><th scope="col">"Detail"</th>
                        </tr></thead>
                        <tbody>
                            {list.into_iter().map(|e| view! {
                                <tr>
                                    <td>{e.at.replace('T', " ").trim_end_matches('Z').to_string()}</td>
                                    <td>{e.action.replace('_', " ")}</td>
                                    <td>{who(e.actor_email, e.actor_id)}</td>
                                    <td>{who(e.subject_email, e.subject_id)}</td>
                                    <td>{e.ip.unwrap_or_default()}</td>
                                    <td>{e.detail.unwrap_or_default()}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            }),
        }}
    }
}

/// An email when the account still exists, else its id, else nothing.
fn who(email: Option<String>, id: Option<String>) -> String {
    email.or(id).unwrap_or_default()
}
