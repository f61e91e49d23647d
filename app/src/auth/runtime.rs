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
    /// No answer, or one that is not the API's shape.
    Network,
    /// The session ended during the call; the person is on the way to the login page.
    SignedOut,
}

impl ApiFailure {
    pub fn message(&self) -> String {
        match self {
            ApiFailure::Api { message, .. } => message.clone(),
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
    #[cfg(feature = "hydrate")]
    inner: StoredValue<browser::Inner, LocalStorage>,
}

pub fn provide_auth() -> Auth {
    let auth = Auth {
        state: RwSignal::new(AuthState::Restoring),
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

    /// Ends the session on the server and forgets the token here.
    pub async fn logout(&self) {
        #[cfg(feature = "hydrate")]
        browser::logout(*self).await;
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
}

#[cfg(feature = "hydrate")]
mod browser {
    use super::*;
    use crate::{
        api::{
            endpoints::{Endpoint, Method, Target, LOGOUT, REFRESH},
            ErrorBody, Session,
        },
        auth::{
            logic::{self, after_answer, after_refresh, Next},
            tabs::{self, TabMessage},
        },
    };
    use futures::future::{FutureExt, LocalBoxFuture, Shared};
    use gloo_net::http::{Request, RequestBuilder, Response};
    use leptos::task::spawn_local;
    use std::time::Duration;

    /// Memory only.
    #[derive(Default)]
    pub struct Inner {
        token: Option<Token>,
        /// The refresh in flight, shared by every caller that needs it.
        flight: Option<Shared<LocalBoxFuture<'static, RefreshOutcome>>>,
        timer: Option<TimeoutHandle>,
        /// To the other tabs of this browser.
        channel: Option<tabs::Channel>,
    }

    struct Token {
        value: String,
        obtained_ms: f64,
        expires_in: u64,
    }

    /// How long a new tab waits for another tab's session before refreshing itself.
    const HELLO_WAIT_MS: i32 = 100;

    fn now_ms() -> f64 {
        js_sys::Date::now()
    }

    /// After hydration: restore the session from the cookie, and catch up when a sleeping
    /// or hidden tab comes back, or the network returns.
    pub fn start(auth: Auth) {
        let channel = tabs::Channel::open(move |message| match message {
            TabMessage::Session { session } => adopt(auth, session),
            TabMessage::SignedOut => forget(auth),
            TabMessage::Hello => share(auth),
        });
        if let Some(channel) = &channel {
            channel.post(&TabMessage::Hello);
        }
        auth.inner.update_value(|i| i.channel = channel);
        tabs::announce_presence();
        let has_token = move || auth.inner.with_value(|i| i.token.is_some());
        Effect::new(move |_| {
            spawn_local(async move {
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
            if due {
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

    fn tell(auth: Auth, message: TabMessage) {
        auth.inner.with_value(|i| {
            if let Some(channel) = &i.channel {
                channel.post(&message);
            }
        });
    }

    /// Takes a session this tab obtained, and hands it to the other tabs.
    fn accept(auth: Auth, session: Session) {
        tell(
            auth,
            TabMessage::Session {
                session: session.clone(),
            },
        );
        adopt(auth, session);
    }

    /// Answers a new tab's hello with our session, while it is not due for a refresh.
    fn share(auth: Auth) {
        let AuthState::SignedIn(user) = auth.state.get_untracked() else {
            return;
        };
        let session = auth.inner.with_value(|i| {
            let token = i.token.as_ref()?;
            let elapsed_secs = ((now_ms() - token.obtained_ms) / 1000.0).max(0.0) as u64;
            (!logic::refresh_due(token.obtained_ms, token.expires_in, now_ms())).then(|| Session {
                user,
                access_token: token.value.clone(),
                token_type: "Bearer".into(),
                expires_in: token.expires_in.saturating_sub(elapsed_secs),
                refresh_token: None,
            })
        });
        if let Some(session) = session {
            tell(auth, TabMessage::Session { session });
        }
    }

    /// Keeps a session in memory and schedules its proactive refresh.
    fn adopt(auth: Auth, session: Session) {
        let expires_in = session.expires_in;
        auth.inner.update_value(|i| {
            i.token = Some(Token {
                value: session.access_token,
                obtained_ms: now_ms(),
                expires_in,
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
        // A refresh of the same person changes nothing that is shown: no notification.
        let signed_in = AuthState::SignedIn(session.user);
        if auth.state.with_untracked(|state| *state != signed_in) {
            auth.state.set(signed_in);
        }
    }

    fn forget(auth: Auth) {
        auth.inner.update_value(|i| {
            i.token = None;
            if let Some(timer) = i.timer.take() {
                timer.clear();
            }
        });
        auth.state.set(AuthState::SignedOut);
    }

    /// This tab and every other forget the session.
    fn end_everywhere(auth: Auth) {
        forget(auth);
        tell(auth, TabMessage::SignedOut);
    }

    /// Memory cleared, then the login page, coming back here afterwards.
    fn sign_out_and_redirect(auth: Auth) {
        end_everywhere(auth);
        let location = window().location();
        // Already there: a page's own guard (or another failed call) got there first, and
        // its `next` is the page the person was on.
        if location.pathname().is_ok_and(|p| p == "/login") {
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
        let flight = match flight {
            Some(flight) => flight,
            None => {
                let flight = perform_refresh(auth).boxed_local().shared();
                auth.inner.update_value(|i| i.flight = Some(flight.clone()));
                flight
            }
        };
        flight.await
    }

    /// One refresh across the tabs: under the Web Lock, and not at all when another tab
    /// refreshed while this one waited (its session arrived over the channel).
    async fn perform_refresh(auth: Auth) -> RefreshOutcome {
        let started = now_ms();
        let outcome = tabs::with_lock(move || async move {
            let renewed_meanwhile = auth
                .inner
                .with_value(|i| i.token.as_ref().is_some_and(|t| t.obtained_ms > started));
            if renewed_meanwhile {
                RefreshOutcome::Renewed
            } else {
                refresh_request(auth).await
            }
        })
        .await;
        // The flight is over; the next caller starts a new one.
        auth.inner.update_value(|i| i.flight = None);
        outcome
    }

    async fn refresh_request(auth: Auth) -> RefreshOutcome {
        // The cookie goes along by itself; nothing else is sent.
        let response = request(REFRESH.method, REFRESH.path).send().await.ok();
        let outcome = after_refresh(response.as_ref().map(Response::status));
        match (outcome, response) {
            (RefreshOutcome::Renewed, Some(response)) => match answer(REFRESH, response).await {
                Ok(session) => accept(auth, session),
                Err(_) => return RefreshOutcome::Unreachable,
            },
            (RefreshOutcome::Ended, _) => end_everywhere(auth),
            _ => {
                // Unreachable: keep what we have; a first restore with no answer is signed out.
                if auth.state.get_untracked() == AuthState::Restoring {
                    auth.state.set(AuthState::SignedOut);
                }
            }
        }
        outcome
    }

    async fn failure(response: Response) -> ApiFailure {
        let status = response.status();
        match response.json::<ErrorBody>().await {
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
        // No content (204, or 202: accepted, nothing to say): only `()` reads from it.
        let text = exchange(auth, encoded.method, &encoded.url, encoded.body).await?;
        serde_json::from_str(text.as_deref().unwrap_or("null")).map_err(|_| ApiFailure::Network)
    }

    /// One call with the access token, refreshing once on an expired or invalid token:
    /// the answer's body, `None` when it has none.
    async fn exchange(
        auth: Auth,
        method: Method,
        url: &str,
        body: Option<String>,
    ) -> Result<Option<String>, ApiFailure> {
        let mut retried = false;
        loop {
            let token = auth
                .inner
                .with_value(|i| i.token.as_ref().map(|t| t.value.clone()));
            let mut builder = request(method, url);
            if let Some(token) = token {
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
                    sign_out_and_redirect(auth);
                    return Err(ApiFailure::SignedOut);
                }
                Next::RefreshThenRetry => match auth.refresh().await {
                    RefreshOutcome::Renewed => retried = true,
                    RefreshOutcome::Ended => {
                        sign_out_and_redirect(auth);
                        return Err(ApiFailure::SignedOut);
                    }
                    RefreshOutcome::Unreachable => return Err(ApiFailure::Network),
                },
            }
        }
    }

    /// Login or register: no access token yet, and the answer is a `Session`.
    pub async fn sign_in<B: Serialize>(
        auth: Auth,
        endpoint: Endpoint<B, Session>,
        body: &B,
    ) -> Result<(), ApiFailure> {
        let request = request(endpoint.method, endpoint.path)
            .json(body)
            .map_err(|_| ApiFailure::Network)?;
        let response = request.send().await.map_err(|_| ApiFailure::Network)?;
        if !response.ok() {
            return Err(failure(response).await);
        }
        let session = answer(endpoint, response).await?;
        accept(auth, session);
        Ok(())
    }

    pub async fn logout(auth: Auth) {
        let _ = request(LOGOUT.method, LOGOUT.path).send().await;
        end_everywhere(auth);
    }
}
