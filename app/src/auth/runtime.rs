//! The browser auth runtime, provided as Leptos context.
//!
//! The access token lives only here, in WASM memory: never in localStorage,
//! sessionStorage, IndexedDB or a script-readable cookie. The refresh token is the
//! server's HTTP-only cookie, which this code never sees. On the server (SSR) the runtime
//! exists but stays `Restoring`, so protected pages render a neutral placeholder and the
//! browser hydrates the same markup before it restores the session.

use super::logic::RefreshOutcome;
use crate::api::{endpoints::IntoTarget, ErrorCode, LoginRequest, RegisterRequest, User};
use leptos::prelude::*;
use serde::{de::DeserializeOwned, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthState {
    /// Not known yet: the server render, and the browser until the first refresh answers.
    Restoring,
    SignedIn(User),
    SignedOut,
}

/// Why an API call failed, for the page to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiFailure {
    /// The API's error body.
    Api {
        status: u16,
        code: ErrorCode,
        message: String,
        fields: BTreeMap<String, String>,
    },
    /// A correct password (or an identity provider's sign-in) of a person whose second
    /// factor is on: the sign-in goes on with this token and a code
    /// ([`Auth::verify_second_factor`]).
    SecondFactor { mfa_token: String },
    /// No answer, or one that is not the API's shape.
    Network,
    /// The session ended during the call; the person is on the way to the login page. (For
    /// a sign-out: its session ended or was replaced before it was sent; nothing was sent.)
    SignedOut,
}

impl ApiFailure {
    /// The browser itself could not do it (a passkey dialog cancelled, say): `message` says
    /// why.
    pub fn browser(message: String) -> ApiFailure {
        ApiFailure::Api {
            status: 0,
            code: ErrorCode::PasskeyInvalid,
            message,
            fields: BTreeMap::new(),
        }
    }

    pub fn message(&self) -> String {
        match self {
            ApiFailure::Api { message, .. } => message.clone(),
            ApiFailure::SecondFactor { .. } => "Enter the code from your authenticator app.".into(),
            ApiFailure::Network => {
                "The server could not be reached. Check your connection and try again.".into()
            }
            ApiFailure::SignedOut => "Your session has ended. Please sign in again.".into(),
        }
    }

    pub fn fields(&self) -> BTreeMap<String, String> {
        match self {
            ApiFailure::Api { fields, .. } => fields.clone(),
            _ => BTreeMap::new(),
        }
    }
}

/// The handle pages use: `use_auth()`. Cheap to copy.
#[derive(Clone, Copy)]
pub struct Auth {
    pub state: RwSignal<AuthState>,
    /// True while the server cannot be reached for a refresh: the session is kept and the
    /// refresh retried with backoff; the header says "Reconnecting…".
    pub reconnecting: RwSignal<bool>,
    #[cfg(feature = "hydrate")]
    inner: StoredValue<browser::Inner, LocalStorage>,
}

pub fn provide_auth() -> Auth {
    let auth = Auth {
        state: RwSignal::new(AuthState::Restoring),
        reconnecting: RwSignal::new(false),
        #[cfg(feature = "hydrate")]
        inner: StoredValue::new_local(browser::Inner::default()),
    };
    provide_context(auth);
    #[cfg(feature = "hydrate")]
    browser::start(auth);
    auth
}

pub fn use_auth() -> Auth {
    expect_context::<Auth>()
}

impl Auth {
    /// Calls an endpoint of [`crate::api::endpoints`] with the access token, refreshing
    /// once on an expired or invalid token. The request and answer types are the
    /// endpoint's own; `request` goes as the JSON body or the query string, as its method
    /// wants.
    #[allow(unused_variables)]
    pub async fn call<E>(&self, endpoint: E, request: &E::Req) -> Result<E::Res, ApiFailure>
    where
        E: IntoTarget,
        E::Req: Serialize,
        E::Res: DeserializeOwned,
    {
        #[cfg(feature = "hydrate")]
        {
            browser::call(*self, endpoint.into_target(), request).await
        }
        #[cfg(not(feature = "hydrate"))]
        {
            Err(ApiFailure::Network)
        }
    }

    #[allow(unused_variables)]
    pub async fn login(&self, request: &LoginRequest) -> Result<(), ApiFailure> {
        #[cfg(feature = "hydrate")]
        {
            browser::sign_in(*self, crate::api::endpoints::LOGIN, request).await
        }
        #[cfg(not(feature = "hydrate"))]
        {
            Err(ApiFailure::Network)
        }
    }

    /// The second step of a sign-in stopped at `mfa_required`: signs in as a login does.
    #[allow(unused_variables)]
    pub async fn verify_second_factor(
        &self,
        request: &crate::api::MfaVerifyRequest,
    ) -> Result<(), ApiFailure> {
        #[cfg(feature = "hydrate")]
        {
            browser::sign_in(*self, crate::api::endpoints::MFA_VERIFY, request).await
        }
        #[cfg(not(feature = "hydrate"))]
        {
            Err(ApiFailure::Network)
        }
    }

    /// "Sign in with a passkey": the server's options, the browser's passkey dialog, then a
    /// sign-in as a login does.
    pub async fn sign_in_with_passkey(&self) -> Result<(), ApiFailure> {
        #[cfg(feature = "hydrate")]
        {
            browser::passkey_sign_in(*self).await
        }
        #[cfg(not(feature = "hydrate"))]
        {
            Err(ApiFailure::Network)
        }
    }

    /// A new passkey for the signed-in person, named `name`.
    #[allow(unused_variables)]
    pub async fn add_passkey(&self, name: String) -> Result<crate::api::PasskeyInfo, ApiFailure> {
        #[cfg(feature = "hydrate")]
        {
            use crate::api::{
                endpoints::{PASSKEY_REGISTER_FINISH, PASSKEY_REGISTER_START},
                PasskeyRegistrationStart,
            };
            let start = PasskeyRegistrationStart {
                name: (!name.trim().is_empty()).then_some(name),
            };
            // The options and the credential are JSON the browser reads and writes (see
            // `webauthn`).
            let options = browser::webauthn_call(*self, PASSKEY_REGISTER_START, &start).await?;
            let credential = super::webauthn::create(&options)
                .await
                .map_err(ApiFailure::browser)?;
            browser::call_with_credential(*self, PASSKEY_REGISTER_FINISH, credential).await
        }
        #[cfg(not(feature = "hydrate"))]
        {
            Err(ApiFailure::Network)
        }
    }

    #[allow(unused_variables)]
    pub async fn register(&self, request: &RegisterRequest) -> Result<(), ApiFailure> {
        #[cfg(feature = "hydrate")]
        {
            browser::sign_in(*self, crate::api::endpoints::REGISTER, request).await
        }
        #[cfg(not(feature = "hydrate"))]
        {
            Err(ApiFailure::Network)
        }
    }

    /// Ends the session on the server, then forgets the token here and in every tab. When
    /// the server could not end it (no answer, or its trouble), the person stays signed in
    /// and the failure says so: a reload would sign them in again. `ApiFailure::SignedOut`:
    /// not sent, since the session it was for ended or was replaced (another person, or
    /// another sign-in) while it waited; the cookie may be another sign-in's.
    pub async fn logout(&self) -> Result<(), ApiFailure> {
        #[cfg(feature = "hydrate")]
        {
            browser::logout(*self).await
        }
        #[cfg(not(feature = "hydrate"))]
        {
            Err(ApiFailure::Network)
        }
    }

    /// The signed-in person's details changed (an answer of the API says so, e.g. a verified
    /// email): shown here and in every other tab.
    pub fn person_changed(&self, user: User) {
        #[cfg(feature = "hydrate")]
        browser::person_changed(*self, user);
        #[cfg(not(feature = "hydrate"))]
        self.state.set(AuthState::SignedIn(user));
    }

    /// Refreshes now (single flight: concurrent callers share one request).
    pub async fn refresh(&self) -> RefreshOutcome {
        #[cfg(feature = "hydrate")]
        {
            browser::refresh(*self).await
        }
        #[cfg(not(feature = "hydrate"))]
        {
            RefreshOutcome::Unreachable
        }
    }

    /// Asks the server again whether this browser's session lives, after something that may
    /// have ended it (a password reset): a refresh sent after every refresh in flight has
    /// landed, which takes no other refresh's answer for its own (one answered before the
    /// change would say the session lives). A session that ended is forgotten here and in
    /// every tab. Nothing is asked when nobody is signed in (`Ended`).
    pub async fn recheck(&self) -> RefreshOutcome {
        #[cfg(feature = "hydrate")]
        {
            browser::recheck(*self).await
        }
        #[cfg(not(feature = "hydrate"))]
        {
            RefreshOutcome::Unreachable
        }
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use super::*;
    use crate::{
        api::{
            endpoints::{Endpoint, Method, Target, LOGOUT, REFRESH},
            ErrorBody, Session, WebAuthnJson,
        },
        auth::{
            logic::{self, after_answer, after_refresh, Next, TokenClaims},
            tabs::{self, TabMessage},
        },
    };
    use futures::future::{FutureExt, LocalBoxFuture, Shared};
    use gloo_net::http::{Request, RequestBuilder, Response};
    use leptos::task::spawn_local;
    use std::time::Duration;
    use wasm_bindgen::JsValue;

    /// Memory only.
    #[derive(Default)]
    pub struct Inner {
        token: Option<Token>,
        /// The refresh in flight, shared by every caller that needs it.
        flight: Option<Shared<LocalBoxFuture<'static, RefreshOutcome>>>,
        timer: Option<TimeoutHandle>,
        /// The next try of a refresh that found no server, and how many came before it.
        reconnect: Option<TimeoutHandle>,
        reconnect_attempts: u32,
        /// When another tab that found no server retries (`performance.now()` ms, a clock
        /// of this tab that never goes back; 0: none known), and the latest this tab waits
        /// for other tabs, counted from the first such message (0: none yet).
        others_retry_at_ms: f64,
        others_hold_until_ms: f64,
        /// The pending retry is of a refresh that may have been carried out unanswered: it
        /// goes out at once, waiting for no other tab (the server's grace window is running).
        urgent: bool,
        /// The last failed refresh may have been carried out (no answer, or a gateway's).
        last_maybe_carried_out: bool,
        /// How many times this tab forgot its session (a sign-out, here or in another
        /// tab): a refresh that waited across one is for a session that is over.
        forgotten: u64,
        /// To the other tabs of this browser.
        channel: Option<tabs::Channel>,
        /// Told when the next message of another tab has been handled.
        message_heard: Option<(u64, futures::channel::oneshot::Sender<()>)>,
        /// How many waits for a message began: tells one waiter from the next.
        message_waits: u64,
    }

    struct Token {
        value: String,
        claims: Option<TokenClaims>,
        obtained_ms: f64,
        expires_in: u64,
        /// The sign-in epoch it belongs to: what it is shared under (the current epoch may
        /// already be that of a sign-in still on its way).
        epoch: u64,
    }

    /// How long a new tab waits for another tab's session before refreshing itself.
    const HELLO_WAIT_MS: i32 = 100;
    /// How long a tab that queued for the refresh lock waits, once it has it, for the news
    /// of the holding before it (a message follows the lock within milliseconds).
    const QUEUED_NEWS_WAIT_MS: u32 = 100;
    /// How long an API call waits for its answer (the body included) before it is given up
    /// as unanswered: longer than the server's own limit for a request
    /// (`HTTP_REQUEST_TIMEOUT_SECS`, 30 s by default), whose answer (503) comes first.
    const CALL_WAIT_MS: u32 = 40_000;
    /// A refresh with less time left than this for its answer is not sent.
    const MIN_ANSWER_WAIT_MS: u32 = 1_000;
    /// The request, given up (as no answer) after [`tabs::ANSWER_WAIT_MS`].
    fn bounded(builder: RequestBuilder) -> RequestBuilder {
        bounded_to(builder, tabs::ANSWER_WAIT_MS)
    }

    /// The request, given up (as no answer) after `ms`.
    fn bounded_to(builder: RequestBuilder, ms: u32) -> RequestBuilder {
        let signal = web_sys::AbortSignal::timeout_with_u32(ms);
        builder.abort_signal(Some(&signal))
    }

    fn now_ms() -> f64 {
        js_sys::Date::now()
    }

    /// A clock of this tab that never goes back (wall-clock changes do not move it).
    fn monotonic_ms() -> f64 {
        window().performance().map_or_else(now_ms, |p| p.now())
    }

    /// The longest another tab's message can hold this tab's own refresh back.
    const MAX_WAIT_FOR_OTHER_TAB_MS: u32 = 30_000;

    /// After hydration: restore the session from the cookie, and catch up when a sleeping
    /// or hidden tab comes back, or the network returns.
    pub fn start(auth: Auth) {
        let channel = tabs::Channel::open(move |message| {
            heard(auth, message);
            let waiting = auth
                .inner
                .try_update_value(|i| i.message_heard.take().map(|(_, waiting)| waiting))
                .flatten();
            if let Some(waiting) = waiting {
                let _ = waiting.send(());
            }
        });
        let arrived = arrived_from_provider();
        if arrived {
            // Sessions other tabs send meanwhile are of sign-ins before this one: not taken.
            tabs::saw_epoch(now_ms() as u64);
        } else if let Some(channel) = &channel {
            channel.post(&TabMessage::Hello);
        }
        auth.inner.update_value(|i| i.channel = channel);
        tabs::announce_presence();
        let has_token = move || auth.inner.with_value(|i| i.token.is_some());
        Effect::new(move |_| {
            spawn_local(async move {
                if arrived {
                    arrive(auth).await;
                    return;
                }
                // With other tabs open, one of them may answer our hello with its session:
                // give it a moment rather than refreshing again.
                if !has_token() && tabs::other_tabs().await > 0 {
                    tabs::sleep(HELLO_WAIT_MS).await;
                }
                if !has_token() {
                    auth.refresh().await;
                }
            });
        });
        let catch_up = move || {
            let due = auth.inner.with_value(|i| {
                i.token
                    .as_ref()
                    .is_some_and(|t| logic::refresh_due(t.obtained_ms, t.expires_in, now_ms()))
            });
            if due || auth.reconnecting.get_untracked() {
                // The network is back, or the person looks at the tab: try now, rather than
                // wait for another tab's retry.
                auth.inner.update_value(|i| {
                    i.others_retry_at_ms = 0.0;
                    i.others_hold_until_ms = 0.0;
                });
                spawn_local(async move {
                    auth.refresh().await;
                });
            }
        };
        let on_online = window_event_listener(leptos::ev::online, move |_| catch_up());
        let on_visible = window_event_listener_untyped("visibilitychange", move |_| {
            if document().visibility_state() == web_sys::VisibilityState::Visible {
                catch_up();
            }
        });
        on_cleanup(move || {
            on_online.remove();
            on_visible.remove();
        });
    }

    /// A message of another tab.
    fn heard(auth: Auth, message: TabMessage) {
        match message {
            // A session or a person without an epoch comes from a tab of the version before
            // epochs, which takes late refresh answers: never adopted here.
            TabMessage::Session {
                session,
                epoch: Some(epoch),
            } => {
                if tabs::plausible_epoch(epoch) {
                    offered(auth, session, epoch);
                }
            }
            TabMessage::Person {
                user,
                epoch: Some(epoch),
            } => {
                if epoch >= tabs::epoch() && tabs::plausible_epoch(epoch) {
                    show_person(auth, user);
                }
            }
            TabMessage::Session { epoch: None, .. } | TabMessage::Person { epoch: None, .. } => {}
            // Without an epoch (that older version): its sign-outs still reach this tab.
            TabMessage::SignedOut { epoch } => {
                let epoch = epoch.unwrap_or_else(tabs::epoch);
                // A sign-out of an older sign-in says nothing about the current one.
                if epoch >= tabs::epoch() && tabs::plausible_epoch(epoch) {
                    tabs::saw_epoch(epoch);
                    forget(auth);
                }
            }
            TabMessage::Hello => share(auth),
            TabMessage::Unreachable { epoch, retry_in_ms } => {
                if epoch == tabs::epoch() {
                    another_failed(auth, retry_in_ms);
                }
            }
        }
    }

    fn tell(auth: Auth, message: TabMessage) {
        auth.inner.with_value(|i| {
            if let Some(channel) = &i.channel {
                channel.post(&message);
            }
        });
    }

    /// Takes a session this tab obtained in sign-in `epoch`, and hands it to the others.
    fn accept(auth: Auth, session: Session, epoch: u64) {
        tell(
            auth,
            TabMessage::Session {
                session: session.clone(),
                epoch: Some(epoch),
            },
        );
        adopt(auth, session, epoch);
    }

    /// A session another tab sent: adopted only when it passes `logic::adopt_offer`.
    fn offered(auth: Auth, session: Session, epoch: u64) {
        let claims = logic::token_claims(&session.access_token);
        let acceptable = auth.inner.with_value(|i| {
            logic::adopt_offer(&logic::Offer {
                epoch,
                current_epoch: tabs::epoch(),
                expires_in: session.expires_in,
                claims: claims.clone(),
                held: i.token.as_ref().and_then(|t| t.claims.as_ref()),
            })
        });
        // The token must also speak for the person the message names.
        if acceptable && claims.is_some_and(|c| c.sub == session.user.id) {
            tabs::saw_epoch(epoch);
            adopt(auth, session, epoch);
        }
    }

    /// Answers a new tab's hello with our session, while it is not due for a refresh.
    fn share(auth: Auth) {
        let AuthState::SignedIn(user) = auth.state.get_untracked() else {
            return;
        };
        let session = auth.inner.with_value(|i| {
            let token = i.token.as_ref()?;
            let elapsed_secs = ((now_ms() - token.obtained_ms) / 1000.0).max(0.0) as u64;
            let session = Session {
                user,
                access_token: token.value.clone(),
                token_type: "Bearer".into(),
                expires_in: token.expires_in.saturating_sub(elapsed_secs),
                refresh_token: None,
            };
            (!logic::refresh_due(token.obtained_ms, token.expires_in, now_ms()))
                .then_some((session, token.epoch))
        });
        if let Some((session, epoch)) = session {
            tell(
                auth,
                TabMessage::Session {
                    session,
                    epoch: Some(epoch),
                },
            );
        }
    }

    /// New details of the person signed in; never another person (that comes with a token).
    fn show_person(auth: Auth, user: User) {
        let same = matches!(auth.state.get_untracked(), AuthState::SignedIn(u) if u.id == user.id);
        if same {
            auth.state.set(AuthState::SignedIn(user));
        }
    }

    pub fn person_changed(auth: Auth, user: User) {
        show_person(auth, user.clone());
        tell(
            auth,
            TabMessage::Person {
                user,
                epoch: Some(tabs::epoch()),
            },
        );
    }

    /// Keeps a session in memory and schedules its proactive refresh.
    fn adopt(auth: Auth, session: Session, epoch: u64) {
        let expires_in = session.expires_in;
        auth.inner.update_value(|i| {
            i.token = Some(Token {
                claims: logic::token_claims(&session.access_token),
                value: session.access_token,
                obtained_ms: now_ms(),
                expires_in,
                epoch,
            });
            if let Some(timer) = i.timer.take() {
                timer.clear();
            }
            let delay = logic::proactive_delay_ms(expires_in, js_sys::Math::random());
            i.timer = set_timeout_with_handle(
                move || {
                    spawn_local(async move {
                        auth.refresh().await;
                    })
                },
                Duration::from_millis(delay),
            )
            .ok();
        });
        reconnected(auth);
        // A refresh of the same person changes nothing that is shown: no notification.
        let signed_in = AuthState::SignedIn(session.user);
        if auth.state.with_untracked(|state| *state != signed_in) {
            auth.state.set(signed_in);
        }
    }

    fn forget(auth: Auth) {
        auth.inner.update_value(|i| {
            i.token = None;
            i.forgotten += 1;
            if let Some(timer) = i.timer.take() {
                timer.clear();
            }
        });
        reconnected(auth);
        auth.state.set(AuthState::SignedOut);
    }

    /// The server answered: no more retries pending.
    fn reconnected(auth: Auth) {
        auth.inner.update_value(|i| {
            i.reconnect_attempts = 0;
            i.others_retry_at_ms = 0.0;
            i.others_hold_until_ms = 0.0;
            i.urgent = false;
            i.last_maybe_carried_out = false;
            if let Some(timer) = i.reconnect.take() {
                timer.clear();
            }
        });
        if auth.reconnecting.get_untracked() {
            auth.reconnecting.set(false);
        }
    }

    /// No server for a refresh: keep what we have (signed in, or still restoring), say
    /// "Reconnecting…", and try again after a growing delay, never sooner than the server's
    /// `Retry-After`. After a request the server may have carried out without its answer
    /// reaching us (`maybe_carried_out`: no answer, or a gateway's 502 or 504), within the
    /// first delay (at most 1 s), so the retry with the old cookie stays inside the server's
    /// grace window. The other tabs are told, and hold their own retries back.
    fn retry_later(auth: Auth, retry_after_secs: Option<u32>, maybe_carried_out: bool) {
        auth.reconnecting.set(true);
        let scheduled = auth
            .inner
            .try_update_value(|i| {
                // Only one such retry in a row: a server that is down answers none, and is
                // not asked every second.
                let fast = maybe_carried_out && !i.last_maybe_carried_out;
                i.last_maybe_carried_out = maybe_carried_out;
                if fast {
                    // Sooner than any retry already pending, and for no other tab to wait for.
                    if let Some(timer) = i.reconnect.take() {
                        timer.clear();
                    }
                    i.urgent = true;
                }
                if i.reconnect.is_some() {
                    return None;
                }
                let delay = if fast {
                    logic::reconnect_delay_ms(0, js_sys::Math::random(), None)
                } else {
                    logic::reconnect_delay_ms(
                        i.reconnect_attempts,
                        js_sys::Math::random(),
                        retry_after_secs,
                    )
                };
                i.reconnect_attempts = i.reconnect_attempts.saturating_add(1);
                i.reconnect = retry_in(auth, delay);
                Some(delay)
            })
            .flatten();
        if let Some(retry_in_ms) = scheduled {
            tell(
                auth,
                TabMessage::Unreachable {
                    epoch: tabs::epoch(),
                    retry_in_ms,
                },
            );
        }
    }

    fn retry_in(auth: Auth, delay_ms: u32) -> Option<TimeoutHandle> {
        set_timeout_with_handle(
            move || {
                auth.inner.update_value(|i| i.reconnect = None);
                spawn_local(async move {
                    auth.refresh().await;
                })
            },
            Duration::from_millis(u64::from(delay_ms)),
        )
        .ok()
    }

    /// Another tab's refresh just found no server, and it retries in `retry_in_ms`: until
    /// then this tab does not ask the server either, and its own pending retry moves to
    /// after that one, so the server is asked once a round, not once a tab. When the other
    /// tab's retry succeeds, its session arrives here and cancels the pending retry.
    fn another_failed(auth: Auth, retry_in_ms: u32) {
        // Any script of this site can post on the channel: messages hold this tab's own
        // tries back 30 s at most from the first of them (however long a `Retry-After` the
        // other tab honours, however often they come), and the network coming back or the
        // tab being looked at ends the wait.
        let retry_in_ms = retry_in_ms.clamp(500, MAX_WAIT_FOR_OTHER_TAB_MS);
        auth.inner.update_value(|i| {
            let now = monotonic_ms();
            if i.others_hold_until_ms == 0.0 {
                i.others_hold_until_ms = now + f64::from(MAX_WAIT_FOR_OTHER_TAB_MS);
            }
            i.others_retry_at_ms = (now + f64::from(retry_in_ms)).min(i.others_hold_until_ms);
            if i.urgent {
                return;
            }
            if let Some(timer) = i.reconnect.take() {
                timer.clear();
                i.reconnect = retry_in(auth, after_the_other_tab(i.others_retry_at_ms - now));
            }
        });
    }

    /// A delay just past another tab's retry due in `ms` (by a quarter to one second): that
    /// tab goes first, and tells the result.
    fn after_the_other_tab(ms: f64) -> u32 {
        (ms.max(0.0) + 250.0 + 750.0 * js_sys::Math::random()) as u32
    }

    /// This tab needed the server while another tab's retry is pending: it waits for that
    /// retry (it says "Reconnecting…" meanwhile) rather than asking the server itself.
    fn wait_for_other_tab(auth: Auth, retry_at_ms: f64) {
        auth.reconnecting.set(true);
        auth.inner.update_value(|i| {
            if i.reconnect.is_none() {
                i.reconnect = retry_in(auth, after_the_other_tab(retry_at_ms - monotonic_ms()));
            }
        });
    }

    /// This tab and every other forget the session of sign-in `epoch`.
    fn end_everywhere(auth: Auth, epoch: u64) {
        forget(auth);
        tell(auth, TabMessage::SignedOut { epoch: Some(epoch) });
    }

    /// Memory cleared, then the login page, coming back here afterwards.
    fn sign_out_and_redirect(auth: Auth) {
        end_everywhere(auth, tabs::epoch());
        let location = window().location();
        // Already there: a page's own guard (or another failed call) got there first, and
        // its `next` is the page the person was on.
        if location.pathname().is_ok_and(|p| logic::is_login_page(&p)) {
            return;
        }
        let here = format!(
            "{}{}",
            location.pathname().unwrap_or_default(),
            location.search().unwrap_or_default()
        );
        let _ = location.assign(&logic::login_url(&here));
    }

    pub async fn refresh(auth: Auth) -> RefreshOutcome {
        let flight = auth.inner.with_value(|i| i.flight.clone());
        match flight {
            Some(flight) => flight.await,
            None => fly(auth, perform_refresh(auth, Takes::OthersNews)).await,
        }
    }

    /// Whether this page is where a sign-in at an identity provider came back to (the
    /// `logic::ARRIVED` fragment, taken out of the address bar here).
    fn arrived_from_provider() -> bool {
        let location = window().location();
        if location.hash().ok().as_deref() != Some(logic::ARRIVED) {
            return false;
        }
        let here = format!(
            "{}{}",
            location.pathname().unwrap_or_default(),
            location.search().unwrap_or_default()
        );
        if let Ok(history) = window().history() {
            let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(&here));
        }
        true
    }

    /// The restore of a page a provider's sign-in came back to: a sign-in, as a password one
    /// is (a new epoch, under the lock, handed to every tab), since the cookie is new and no
    /// tab knows it yet. Another tab's session would be the person signed in before, and
    /// the other tabs would take this one's session for a late answer of an older sign-in.
    async fn arrive(auth: Auth) {
        fly(
            auth,
            tabs::with_lock(move |_| async move {
                tabs::next_epoch();
                refresh_request(auth, tabs::ANSWER_WAIT_MS).await
            }),
        )
        .await;
    }

    pub async fn recheck(auth: Auth) -> RefreshOutcome {
        // A refresh in flight may have been answered before the change: it lands first, and
        // so does any started meanwhile (this tab's refreshes go one at a time).
        loop {
            let flight = auth.inner.with_value(|i| i.flight.clone());
            match flight {
                Some(flight) => flight.await,
                None => break,
            };
        }
        if matches!(auth.state.get_untracked(), AuthState::SignedOut) {
            return RefreshOutcome::Ended;
        }
        fly(auth, perform_refresh(auth, Takes::OwnAnswerOnly)).await
    }

    /// Starts this tab's refresh, `work`, which later callers of [`refresh`] join until it
    /// is over.
    async fn fly(
        auth: Auth,
        work: impl std::future::Future<Output = RefreshOutcome> + 'static,
    ) -> RefreshOutcome {
        let flight = async move {
            let outcome = work.await;
            // The flight is over; the next caller starts a new one.
            auth.inner.update_value(|i| i.flight = None);
            outcome
        }
        .boxed_local()
        .shared();
        auth.inner.update_value(|i| i.flight = Some(flight.clone()));
        flight.await
    }

    /// Waits for this tab's refresh in flight, if any: a sign-in or sign-out must not race
    /// it (its answer's `Set-Cookie` would land after theirs).
    async fn settle(auth: Auth) {
        let flight = auth.inner.with_value(|i| i.flight.clone());
        if let Some(flight) = flight {
            flight.await;
        }
    }

    /// What a refresh takes for its answer besides the server's.
    #[derive(Clone, Copy, PartialEq)]
    enum Takes {
        /// What another tab (or sign-in) did while it waited for the lock: a token arrived,
        /// a sign-out, a retry planned (see [`Meanwhile`]).
        OthersNews,
        /// Only a sign-out meanwhile: a token that arrived may come from a refresh answered
        /// before the change a recheck is for.
        OwnAnswerOnly,
    }

    /// One refresh across the tabs: under the Web Lock, and not at all when what happened
    /// while this one waited for the lock makes it pointless.
    async fn perform_refresh(auth: Auth, takes: Takes) -> RefreshOutcome {
        // The token held as the wait begins: another one held once the lock is ours arrived
        // meanwhile (`logic::renewed_since`). Not judged by the clock, which may stand still.
        let held = auth
            .inner
            .with_value(|i| i.token.as_ref().map(|t| t.value.clone()));
        let forgotten = auth.inner.with_value(|i| i.forgotten);
        loop {
            let held = held.clone();
            let attempt = tabs::with_lock(move |queued| async move {
                let started = monotonic_ms();
                // A retry of a refresh the server may have carried out goes at once (the
                // grace window is running).
                let urgent = auth.inner.with_value(|i| i.urgent);
                let news = match takes {
                    Takes::OthersNews => {
                        news_of_the_holding_before(auth, queued && !urgent, || {
                            meanwhile(auth, held.as_deref(), forgotten)
                        })
                        .await
                    }
                    // A sign-out that has not been heard of yet here leaves no cookie: the
                    // refresh is refused, and the session forgotten all the same.
                    Takes::OwnAnswerOnly => meanwhile(auth, held.as_deref(), forgotten)
                        .filter(|news| matches!(news, Meanwhile::SignedOut)),
                };
                Some(match news {
                    // Another tab refreshed, or someone signed in: the session arrived
                    // meanwhile.
                    Some(Meanwhile::Renewed) => RefreshOutcome::Renewed,
                    // Signed out (here or in another tab): the session this refresh was for
                    // is over. (A sign-in or sign-out that failed changed nothing: refresh.)
                    Some(Meanwhile::SignedOut) => RefreshOutcome::Superseded,
                    // Another tab found no server and will try again: its retry speaks for
                    // this tab too.
                    Some(Meanwhile::OtherTabRetriesAt(at)) => {
                        wait_for_other_tab(auth, at);
                        RefreshOutcome::Unreachable
                    }
                    None => {
                        // The wait for news counts against the request's time: the lock is
                        // held no longer than a request may take (`tabs::ANSWER_WAIT_MS`),
                        // which keeps the other tabs from taking it meanwhile.
                        let waited = (monotonic_ms() - started).max(0.0) as u32;
                        let left = tabs::ANSWER_WAIT_MS.saturating_sub(waited);
                        if left < MIN_ANSWER_WAIT_MS {
                            // The tab was frozen while it waited, and the other tabs may have
                            // taken the lock since: nothing sent, the lock asked for again.
                            return None;
                        }
                        auth.inner.update_value(|i| i.urgent = false);
                        refresh_request(auth, left).await
                    }
                })
            })
            .await;
            if let Some(outcome) = attempt {
                break outcome;
            }
        }
    }

    /// What, since a refresh began waiting for the lock (holding the token `held`, having
    /// forgotten a session `forgotten` times), makes it pointless.
    enum Meanwhile {
        Renewed,
        SignedOut,
        /// Another tab found no server, and retries at this time (`monotonic_ms`).
        OtherTabRetriesAt(f64),
    }

    fn meanwhile(auth: Auth, held: Option<&str>, forgotten: u64) -> Option<Meanwhile> {
        if renewed_since(auth, held) {
            return Some(Meanwhile::Renewed);
        }
        auth.inner.with_value(|i| {
            let others_retry_at = if i.urgent { 0.0 } else { i.others_retry_at_ms };
            if i.forgotten != forgotten {
                Some(Meanwhile::SignedOut)
            } else if monotonic_ms() < others_retry_at {
                Some(Meanwhile::OtherTabRetriesAt(others_retry_at))
            } else {
                None
            }
        })
    }

    /// `news()`, for work under the lock. When this tab queued for the lock, the holding
    /// before it may have just refreshed, signed in or out, or found no server, and its
    /// message may not be here yet: the message and the lock travel apart between tabs, and
    /// the lock can come first. So it waits up to [`QUEUED_NEWS_WAIT_MS`] for `news()` to
    /// be some, looking again after each message of another tab handled meanwhile.
    async fn news_of_the_holding_before<T>(
        auth: Auth,
        queued: bool,
        news: impl Fn() -> Option<T>,
    ) -> Option<T> {
        let mut found = news();
        if queued {
            let until = monotonic_ms() + f64::from(QUEUED_NEWS_WAIT_MS);
            while found.is_none() && monotonic_ms() < until {
                next_message(auth, (until - monotonic_ms()).ceil() as i32).await;
                found = news();
            }
        }
        found
    }

    /// Resolves when the next message of another tab has been handled, or after `ms`. One
    /// waiter at a time (only work under the refresh lock waits): a second (the work of a
    /// robbed holding, run again) takes the first one's place, which then only stops waiting
    /// early.
    async fn next_message(auth: Auth, ms: i32) {
        let (heard, message) = futures::channel::oneshot::channel::<()>();
        let mine = auth
            .inner
            .try_update_value(|i| {
                i.message_waits += 1;
                i.message_heard = Some((i.message_waits, heard));
                i.message_waits
            })
            .unwrap_or_default();
        futures::future::select(message, Box::pin(tabs::sleep(ms))).await;
        auth.inner.update_value(|i| {
            if i.message_heard
                .as_ref()
                .is_some_and(|(waiter, _)| *waiter == mine)
            {
                i.message_heard = None;
            }
        });
    }

    /// The refresh itself, given up (as no answer) after `answer_wait_ms`.
    async fn refresh_request(auth: Auth, answer_wait_ms: u32) -> RefreshOutcome {
        let epoch = tabs::epoch();
        // The cookie goes along by itself; nothing else is sent.
        let response = bounded_to(request(REFRESH.method, REFRESH.path), answer_wait_ms)
            .send()
            .await
            .ok();
        let status = response.as_ref().map(Response::status);
        // No answer (given up, or the connection lost), or a gateway's: the server may have
        // rotated the cookie without the answer reaching us. The retry must come inside its
        // grace window, whatever came before.
        let maybe_carried_out = matches!(status, None | Some(502 | 504));
        let retry_after = response
            .as_ref()
            .and_then(|r| logic::retry_after_secs(r.headers().get("retry-after").as_deref()));
        let (session, code) = match response {
            Some(response) if response.ok() => (answer(REFRESH, response).await.ok(), None),
            Some(response) => match failure(response).await {
                ApiFailure::Api { code, .. } => (None, Some(code)),
                _ => (None, None),
            },
            None => (None, None),
        };
        let mut outcome = after_refresh(status, code);
        // Signed in or out, here or in another tab, while this was on its way: the answer
        // belongs to a session that is over.
        if tabs::epoch() != epoch {
            return RefreshOutcome::Superseded;
        }
        match (outcome, session) {
            (RefreshOutcome::Renewed, Some(session)) => accept(auth, session, epoch),
            (RefreshOutcome::Renewed, None) => {
                // Carried out, but its body unreadable: the cookie did rotate.
                outcome = RefreshOutcome::Unreachable;
                retry_later(auth, None, true);
            }
            (RefreshOutcome::Ended, _) => end_everywhere(auth, epoch),
            _ => retry_later(auth, retry_after, maybe_carried_out),
        }
        outcome
    }

    async fn failure(response: Response) -> ApiFailure {
        let status = response.status();
        match response.json::<ErrorBody>().await {
            Ok(ErrorBody {
                error:
                    crate::api::ErrorDetail {
                        code: ErrorCode::MfaRequired,
                        mfa_token: Some(mfa_token),
                        ..
                    },
            }) => ApiFailure::SecondFactor { mfa_token },
            Ok(body) => ApiFailure::Api {
                status,
                code: body.error.code,
                message: body.error.message,
                fields: body.error.fields.unwrap_or_default(),
            },
            Err(_) => ApiFailure::Network,
        }
    }

    fn request(method: Method, url: &str) -> RequestBuilder {
        match method {
            Method::Get => Request::get(url),
            Method::Post => Request::post(url),
            Method::Patch => Request::patch(url),
            Method::Delete => Request::delete(url),
        }
    }

    /// A success's body, read as the type `endpoint` answers.
    async fn answer<Req, Res: DeserializeOwned>(
        _endpoint: Endpoint<Req, Res>,
        response: Response,
    ) -> Result<Res, ApiFailure> {
        response
            .json::<Res>()
            .await
            .map_err(|_| ApiFailure::Network)
    }

    /// The typed ends of [`exchange`]: JSON in, JSON out. Kept thin, since a copy is
    /// compiled for every pair of types (the exchange itself is compiled once).
    pub async fn call<Req: Serialize, Res: DeserializeOwned>(
        auth: Auth,
        target: Target<Req, Res>,
        request: &Req,
    ) -> Result<Res, ApiFailure> {
        let encoded = target.encode(request).map_err(|_| ApiFailure::Network)?;
        read(exchange(auth, encoded.method, &encoded.url, encoded.body).await?)
    }

    /// An answer's body as the type expected. No content (204, or 202: accepted, nothing
    /// to say): only `()` reads from it.
    fn read<Res: DeserializeOwned>(text: Option<String>) -> Result<Res, ApiFailure> {
        serde_json::from_str(text.as_deref().unwrap_or("null")).map_err(|_| ApiFailure::Network)
    }

    /// A call answered with WebAuthn options: their `publicKey`, parsed by the browser for
    /// the browser (Rust never reads them); see [`webauthn_json`].
    pub async fn webauthn_call<E: IntoTarget<Res = WebAuthnJson>>(
        auth: Auth,
        endpoint: E,
        request: &E::Req,
    ) -> Result<JsValue, ApiFailure>
    where
        E::Req: Serialize,
    {
        let encoded = endpoint
            .into_target()
            .encode(request)
            .map_err(|_| ApiFailure::Network)?;
        let text = exchange(auth, encoded.method, &encoded.url, encoded.body).await?;
        webauthn_json(text.as_deref().unwrap_or_default())
    }

    /// The `publicKey` options of the server's answer. An answer without them (not JSON, or
    /// a proxy's JSON) is the server's failure, not the browser's.
    fn webauthn_json(text: &str) -> Result<JsValue, ApiFailure> {
        let options = js_sys::JSON::parse(text).map_err(|_| ApiFailure::Network)?;
        if !options.is_object() {
            return Err(ApiFailure::Network);
        }
        js_sys::Reflect::get(&options, &JsValue::from_str("publicKey"))
            .ok()
            .filter(JsValue::is_object)
            .ok_or(ApiFailure::Network)
    }

    /// A call sending a WebAuthn credential, as the browser wrote it.
    pub async fn call_with_credential<Res: DeserializeOwned>(
        auth: Auth,
        endpoint: Endpoint<WebAuthnJson, Res>,
        credential: String,
    ) -> Result<Res, ApiFailure> {
        read(exchange(auth, endpoint.method, endpoint.path, Some(credential)).await?)
    }

    fn held_person(auth: Auth) -> Option<String> {
        auth.inner.with_value(|i| {
            i.token
                .as_ref()
                .and_then(|t| t.claims.as_ref())
                .map(|c| c.sub.clone())
        })
    }

    /// True when this tab holds another access token than `sent`: the one a call went with,
    /// or the one held when a refresh began waiting for the lock.
    fn renewed_since(auth: Auth, sent: Option<&str>) -> bool {
        auth.inner.with_value(|i| {
            logic::renewed_since(sent, i.token.as_ref().map(|held| held.value.as_str()))
        })
    }

    /// One call with the access token, refreshing once on an expired or invalid token
    /// (first sending it again with a newer token, when the tab took one meanwhile): the
    /// answer's body, `None` when it has none.
    async fn exchange(
        auth: Auth,
        method: Method,
        url: &str,
        body: Option<String>,
    ) -> Result<Option<String>, ApiFailure> {
        let mut retried = false;
        // Sent again, once, with a token the tab took after the first send (see below).
        let mut resent_with_newer = false;
        // The person this call is made for: after a refresh it is retried only for them,
        // never for someone who signed in meanwhile.
        let person = held_person(auth);
        loop {
            if (retried || resent_with_newer) && held_person(auth) != person {
                return Err(ApiFailure::SignedOut);
            }
            let token = auth
                .inner
                .with_value(|i| i.token.as_ref().map(|t| t.value.clone()));
            // The sign-in this send is made in: an answer that ends the session ends this
            // one only, not one that replaced it while the answer was on its way.
            let sent_in = sign_in_now(auth);
            let mut builder = bounded_to(request(method, url), CALL_WAIT_MS);
            if let Some(token) = &token {
                builder = builder.header("Authorization", &format!("Bearer {token}"));
            }
            let sent = match &body {
                Some(body) => match builder
                    .header("Content-Type", "application/json")
                    .body(body.as_str())
                {
                    Ok(request) => request.send().await,
                    Err(_) => return Err(ApiFailure::Network),
                },
                None => builder.send().await,
            };
            let response = sent.map_err(|_| ApiFailure::Network)?;
            if response.status() == 204 || response.status() == 202 {
                return Ok(None);
            }
            if response.ok() {
                return response
                    .text()
                    .await
                    .map(Some)
                    .map_err(|_| ApiFailure::Network);
            }
            let failure = failure(response).await;
            let (status, code) = match &failure {
                ApiFailure::Api { status, code, .. } => (*status, Some(*code)),
                _ => (0, None),
            };
            match after_answer(status, code, retried) {
                Next::Deliver => return Err(failure),
                Next::SignOut => {
                    if !moved_on_from(auth, &sent_in) {
                        sign_out_and_redirect(auth);
                    }
                    return Err(ApiFailure::SignedOut);
                }
                // The tab took another token after this call was sent (a refresh that other
                // calls started, another tab's, …), so this 401 was for the old one: send it
                // again with the new token rather than refresh again. Once only, and without
                // spending the retry: should the new token be refused too, one real refresh
                // still follows.
                Next::RefreshThenRetry
                    if !resent_with_newer && renewed_since(auth, token.as_deref()) =>
                {
                    resent_with_newer = true;
                }
                Next::RefreshThenRetry => match auth.refresh().await {
                    RefreshOutcome::Renewed => retried = true,
                    RefreshOutcome::Ended => {
                        sign_out_and_redirect(auth);
                        return Err(ApiFailure::SignedOut);
                    }
                    // Someone signed in or out meanwhile: retry with whatever is held now
                    // (pages reload their data for a new person), or stop when nothing is.
                    RefreshOutcome::Superseded => {
                        if auth.inner.with_value(|i| i.token.is_none()) {
                            return Err(ApiFailure::SignedOut);
                        }
                        retried = true;
                    }
                    RefreshOutcome::Unreachable => return Err(ApiFailure::Network),
                },
            }
        }
    }

    /// Login or register: no access token yet, and the answer is a `Session`. Run under
    /// the refresh lock, after this tab's refresh in flight, as a new sign-in epoch: any
    /// answer of the sign-in before it is dropped wherever it lands.
    pub async fn sign_in<B: Serialize>(
        auth: Auth,
        endpoint: Endpoint<B, Session>,
        body: &B,
    ) -> Result<(), ApiFailure> {
        let body = serde_json::to_string(body).map_err(|_| ApiFailure::Network)?;
        sign_in_with_text(auth, endpoint.method, endpoint.path, body).await
    }

    /// [`sign_in`] with its body written already.
    async fn sign_in_with_text(
        auth: Auth,
        method: Method,
        path: &'static str,
        body: String,
    ) -> Result<(), ApiFailure> {
        settle(auth).await;
        tabs::with_lock(move |_| async move {
            let before = tabs::epoch();
            let epoch = tabs::next_epoch();
            let outcome = async {
                let response = bounded(request(method, path))
                    .header("Content-Type", "application/json")
                    .body(body)
                    .map_err(|_| ApiFailure::Network)?
                    .send()
                    .await
                    .map_err(|_| ApiFailure::Network)?;
                if !response.ok() {
                    return Err(failure(response).await);
                }
                response
                    .json::<Session>()
                    .await
                    .map_err(|_| ApiFailure::Network)
            }
            .await;
            match outcome {
                Ok(session) => {
                    accept(auth, session, epoch);
                    Ok(())
                }
                // Nothing changed: the session before (if any) goes on, in its epoch.
                Err(failure) => {
                    tabs::undo_epoch(epoch, before);
                    Err(failure)
                }
            }
        })
        .await
    }

    /// Signing in with a passkey: the options (no token needed), the browser's dialog, then
    /// the sign-in itself as [`sign_in`].
    pub async fn passkey_sign_in(auth: Auth) -> Result<(), ApiFailure> {
        use crate::api::endpoints::{PASSKEY_SIGN_IN_FINISH, PASSKEY_SIGN_IN_START};
        let response = bounded(request(
            PASSKEY_SIGN_IN_START.method,
            PASSKEY_SIGN_IN_START.path,
        ))
        .send()
        .await
        .map_err(|_| ApiFailure::Network)?;
        if !response.ok() {
            return Err(failure(response).await);
        }
        // The options and the credential are JSON the browser reads and writes (see
        // `webauthn`).
        let options = response.text().await.map_err(|_| ApiFailure::Network)?;
        let options = webauthn_json(&options)?;
        let credential = crate::auth::webauthn::assert(&options)
            .await
            .map_err(ApiFailure::browser)?;
        let finish: Endpoint<WebAuthnJson, Session> = PASSKEY_SIGN_IN_FINISH;
        sign_in_with_text(auth, finish.method, finish.path, credential).await
    }

    /// The sign-in a sign-out is for, as this tab knows it.
    #[derive(Clone, PartialEq, Eq)]
    struct SignIn {
        /// The person shown.
        person: Option<String>,
        /// The epoch of the token held (0: restored by this tab's own refresh, before it
        /// heard of any sign-in; it takes an epoch with the first session another tab sends).
        epoch: Option<u64>,
        /// How many times this tab forgot its session.
        forgotten: u64,
    }

    fn sign_in_now(auth: Auth) -> SignIn {
        let person = match auth.state.get_untracked() {
            AuthState::SignedIn(user) => Some(user.id),
            _ => None,
        };
        auth.inner.with_value(|i| SignIn {
            person,
            epoch: i.token.as_ref().map(|t| t.epoch),
            forgotten: i.forgotten,
        })
    }

    /// Whether the sign-in `of` is over or replaced: forgotten (a sign-out), another person,
    /// or the token of another sign-in of the same person.
    fn moved_on_from(auth: Auth, of: &SignIn) -> bool {
        let now = sign_in_now(auth);
        now.forgotten != of.forgotten
            || now.person != of.person
            || (of.epoch.is_some_and(|e| e != 0) && now.epoch != of.epoch)
    }

    /// Ends the session on the server first; only then is the person shown signed out.
    /// Under the refresh lock, after this tab's refresh in flight, as a new epoch. Not sent
    /// (`ApiFailure::SignedOut`) when its sign-in ended or was replaced while it waited.
    pub async fn logout(auth: Auth) -> Result<(), ApiFailure> {
        // The sign-in this sign-out is for: once it is over or replaced (by a sign-in or
        // sign-out in any tab), the cookie may be someone else's.
        let of = sign_in_now(auth);
        settle(auth).await;
        tabs::with_lock(move |queued| async move {
            let started = monotonic_ms();
            let moved_on =
                news_of_the_holding_before(auth, queued, || moved_on_from(auth, &of).then_some(()))
                    .await;
            if moved_on.is_some() {
                return Err(ApiFailure::SignedOut);
            }
            // As for a refresh: the wait for news counts against the request's time.
            let waited = (monotonic_ms() - started).max(0.0) as u32;
            let left = tabs::ANSWER_WAIT_MS.saturating_sub(waited);
            if left < MIN_ANSWER_WAIT_MS {
                // Frozen while it waited: not sent, the person may try again.
                return Err(ApiFailure::Network);
            }
            let before = tabs::epoch();
            let epoch = tabs::next_epoch();
            let answer = bounded_to(request(LOGOUT.method, LOGOUT.path), left)
                .send()
                .await;
            match answer {
                Ok(response) if response.status() == 204 => {
                    end_everywhere(auth, epoch);
                    Ok(())
                }
                // The session goes on, in its epoch: answers and messages of it still count.
                Ok(response) => {
                    tabs::undo_epoch(epoch, before);
                    Err(failure(response).await)
                }
                Err(_) => {
                    tabs::undo_epoch(epoch, before);
                    Err(ApiFailure::Network)
                }
            }
        })
        .await
    }
}
