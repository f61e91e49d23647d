//! Form state: pending, field errors and the form's error, and the submit helpers that
//! send one request at a time and show its answer.

use crate::{
    auth::{logic::after_sign_in, ApiFailure},
    Hydrated,
};
use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};
use leptos_router::hooks::{use_location, use_navigate};
use std::{collections::BTreeMap, future::Future, pin::Pin, rc::Rc};

/// What a sign-in form shows: pending, field errors, the form's error.
#[derive(Clone, Copy)]
pub struct FormState {
    pending: RwSignal<bool>,
    fields: RwSignal<BTreeMap<String, String>>,
    pub form_error: RwSignal<Option<String>>,
    hydrated: Hydrated,
}

impl FormState {
    pub fn new() -> FormState {
        FormState {
            pending: RwSignal::new(false),
            fields: RwSignal::new(BTreeMap::new()),
            form_error: RwSignal::new(None),
            hydrated: expect_context::<Hydrated>(),
        }
    }

    /// The submit button works once the page is live and while nothing is in flight
    /// (before hydration a native submit would send the fields nowhere useful).
    pub fn ready(&self) -> bool {
        self.hydrated.0.get() && !self.pending.get()
    }

    /// Starts a submission; false when one is already in flight.
    pub fn begin(&self) -> bool {
        if self.pending.get_untracked() {
            return false;
        }
        self.pending.set(true);
        self.fields.set(BTreeMap::new());
        self.form_error.set(None);
        true
    }

    /// Ends a submission that succeeded while the form stays on screen.
    pub fn done(&self) {
        self.pending.set(false);
    }

    /// Sends one request for the form (nothing when one is in flight): its errors are shown
    /// beside the form, its answer goes to `on_ok`.
    pub fn send<T, Fut>(self, request: impl FnOnce() -> Fut, on_ok: impl FnOnce(T) + 'static)
    where
        T: 'static,
        Fut: Future<Output = Result<T, ApiFailure>> + 'static,
    {
        if !self.begin() {
            return;
        }
        let request = request();
        spawn_local(async move {
            match request.await {
                Ok(answer) => {
                    self.done();
                    on_ok(answer);
                }
                Err(failure) => self.fail(failure),
            }
        });
    }

    pub fn fail(&self, failure: ApiFailure) {
        self.fields.set(failure.fields());
        self.form_error.set(Some(failure.message()));
        self.pending.set(false);
        focus_the_failure();
    }

    pub fn field(&self, name: &'static str) -> Signal<Option<String>> {
        let fields = self.fields;
        Signal::derive(move || fields.with(|f| f.get(name).cloned()))
    }
}

/// The submit handler of a sign-in form: one request at a time (`send` builds it from the
/// fields), then `?next=` (same-site only) or `/account`, or the errors beside the form.
pub fn sign_in_on_submit<Fut>(
    form: FormState,
    send: impl Fn() -> Fut + 'static,
) -> impl Fn(SubmitEvent) + 'static
where
    Fut: Future<Output = Result<(), ApiFailure>> + 'static,
{
    sign_in_on_submit_or(form, send, |_| {})
}

/// [`sign_in_on_submit`] for a form whose sign-in may stop at the second factor: then the
/// form is done and `second_factor` gets the token of the second step.
pub fn sign_in_on_submit_or<Fut>(
    form: FormState,
    send: impl Fn() -> Fut + 'static,
    second_factor: impl Fn(String) + 'static,
) -> impl Fn(SubmitEvent) + 'static
where
    Fut: Future<Output = Result<(), ApiFailure>> + 'static,
{
    let go = sign_in_with(form, send, second_factor);
    move |ev: SubmitEvent| {
        ev.prevent_default();
        go();
    }
}

/// A sign-in begun by a button rather than a form (a passkey): as [`sign_in_on_submit`].
pub fn sign_in_on_click<Fut>(
    form: FormState,
    send: impl Fn() -> Fut + 'static,
) -> impl Fn(leptos::ev::MouseEvent) + 'static
where
    Fut: Future<Output = Result<(), ApiFailure>> + 'static,
{
    let go = sign_in_with(form, send, |_| {});
    move |_| go()
}

fn sign_in_with<Fut>(
    form: FormState,
    send: impl Fn() -> Fut + 'static,
    second_factor: impl Fn(String) + 'static,
) -> impl Fn() + 'static
where
    Fut: Future<Output = Result<(), ApiFailure>> + 'static,
{
    signing_in(
        form,
        Rc::new(move || Box::pin(send())),
        Rc::new(second_factor),
    )
}

/// A sign-in's request, its type erased: the code that sends it and shows its answer is
/// then compiled once for every form rather than once per form.
type SignIn = Rc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), ApiFailure>>>>>;

fn signing_in(
    form: FormState,
    send: SignIn,
    second_factor: Rc<dyn Fn(String)>,
) -> impl Fn() + 'static {
    let query = use_location().query;
    let navigate = use_navigate();
    move || {
        if !form.begin() {
            return;
        }
        let next = after_sign_in(query.get_untracked().get("next").as_deref());
        let navigate = navigate.clone();
        let second_factor = second_factor.clone();
        let request = send();
        spawn_local(async move {
            match request.await {
                Ok(()) => {
                    // `next` may be this very page (`?next=/login`): the form stays usable.
                    form.done();
                    navigate(&next, Default::default());
                }
                Err(ApiFailure::SecondFactor { mfa_token }) => {
                    form.done();
                    second_factor(mfa_token);
                }
                Err(failure) => form.fail(failure),
            }
        });
    }
}

/// After a failed submit, moves focus to the first invalid field, or else to the form's
/// error, so keyboard and screen-reader users land on what to fix. Done once the errors
/// are on the page (the next frame).
fn focus_the_failure() {
    #[cfg(feature = "hydrate")]
    {
        request_animation_frame(|| {
            use wasm_bindgen::JsCast;
            let document = document();
            let target = document
                .query_selector("form [aria-invalid=\"true\"]")
                .ok()
                .flatten()
                .or_else(|| {
                    document
                        .query_selector(".form-error[role=\"alert\"]")
                        .ok()
                        .flatten()
                });
            if let Some(element) = target.and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok()) {
                let _ = element.focus();
            }
        });
    }
}
