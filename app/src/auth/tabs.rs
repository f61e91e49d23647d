//! Cross-tab coordination, browser only: one refresh across the tabs of a browser under a
//! Web Lock, and tabs telling each other, memory to memory over a `BroadcastChannel`, about
//! new tokens and sign-outs. Nothing here touches any storage.

use crate::api::Session;
use serde::{Deserialize, Serialize};
use std::{cell::RefCell, future::Future, rc::Rc};
use wasm_bindgen::{closure::Closure, JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

const CHANNEL: &str = "jwt-auth";
const LOCK: &str = "jwt-auth-refresh";
/// Held, shared, by every open tab for its whole life: how tabs count each other.
const PRESENCE: &str = "jwt-auth-tab";
/// How long a tab waits for the lock before taking it from a holder that is frozen or gone.
pub const LOCK_WAIT_MS: u32 = 3_000;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TabMessage {
    /// A tab obtained a session (a refresh or a sign-in): the others adopt it.
    Session { session: Session },
    /// A tab signed out, or learned that the session ended: every tab forgets it.
    SignedOut,
    /// A tab that just opened asks whether another holds a live session.
    Hello,
}

pub struct Channel(web_sys::BroadcastChannel);

impl Channel {
    /// Opens the channel; `on_message` runs for each message of another tab.
    pub fn open(mut on_message: impl FnMut(TabMessage) + 'static) -> Option<Channel> {
        let channel = web_sys::BroadcastChannel::new(CHANNEL).ok()?;
        let handler = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
            move |event: web_sys::MessageEvent| {
                if let Some(message) = event
                    .data()
                    .as_string()
                    .and_then(|text| serde_json::from_str::<TabMessage>(&text).ok())
                {
                    on_message(message);
                }
            },
        );
        channel.set_onmessage(Some(handler.as_ref().unchecked_ref()));
        // The handler lives as long as the page.
        handler.forget();
        Some(Channel(channel))
    }

    pub fn post(&self, message: &TabMessage) {
        if let Ok(text) = serde_json::to_string(message) {
            let _ = self.0.post_message(&JsValue::from_str(&text));
        }
    }
}

fn lock_manager() -> Option<JsValue> {
    let navigator = leptos::prelude::window().navigator();
    js_sys::Reflect::get(&navigator, &JsValue::from_str("locks"))
        .ok()
        .filter(|locks| !locks.is_undefined() && !locks.is_null())
}

/// `navigator.locks` and one of its methods.
fn lock_method(name: &str) -> Option<(JsValue, js_sys::Function)> {
    let locks = lock_manager()?;
    let method = js_sys::Reflect::get(&locks, &JsValue::from_str(name))
        .ok()?
        .dyn_into::<js_sys::Function>()
        .ok()?;
    Some((locks, method))
}

/// Takes this tab's share of the presence lock until the tab closes.
pub fn announce_presence() {
    let Some((locks, request)) = lock_method("request") else {
        return;
    };
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(
        &options,
        &JsValue::from_str("mode"),
        &JsValue::from_str("shared"),
    );
    // A promise that never settles keeps the lock for the life of the page.
    let hold = Closure::once_into_js(|_lock: JsValue| js_sys::Promise::new(&mut |_, _| {}));
    let _ = request.call3(&locks, &JsValue::from_str(PRESENCE), &options, &hold);
}

/// How many other tabs of this site are open (0 without Web Locks).
pub async fn other_tabs() -> usize {
    let Some((locks, query)) = lock_method("query") else {
        return 0;
    };
    let Ok(snapshot) = query.call0(&locks) else {
        return 0;
    };
    let Ok(snapshot) = JsFuture::from(js_sys::Promise::from(snapshot)).await else {
        return 0;
    };
    let held =
        js_sys::Reflect::get(&snapshot, &JsValue::from_str("held")).unwrap_or(JsValue::UNDEFINED);
    let tabs = js_sys::Array::from(&held)
        .iter()
        .filter(|lock| {
            js_sys::Reflect::get(lock, &JsValue::from_str("name"))
                .ok()
                .and_then(|name| name.as_string())
                .as_deref()
                == Some(PRESENCE)
        })
        .count();
    tabs.saturating_sub(1)
}

/// Resolves after `ms` milliseconds.
pub async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = leptos::prelude::window()
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = JsFuture::from(promise).await;
}

/// Runs `work` while holding the cross-tab refresh lock. A tab waits at most
/// [`LOCK_WAIT_MS`], then steals the lock: a tab that was closed released it already, one
/// that is frozen would otherwise block every other tab. Without Web Locks `work` runs at
/// once, and the server's convergence is the backstop.
pub async fn with_lock<T, Fut>(work: impl Fn() -> Fut + 'static) -> T
where
    T: 'static,
    Fut: Future<Output = T> + 'static,
{
    let Some((locks, request)) = lock_method("request") else {
        return work().await;
    };
    let work = Rc::new(work);
    let result: Rc<RefCell<Option<T>>> = Rc::default();
    for steal in [false, true] {
        let options = js_sys::Object::new();
        let (key, value): (&str, JsValue) = if steal {
            ("steal", JsValue::TRUE)
        } else {
            (
                "signal",
                web_sys::AbortSignal::timeout_with_u32(LOCK_WAIT_MS).into(),
            )
        };
        let _ = js_sys::Reflect::set(&options, &JsValue::from_str(key), &value);
        let (work, slot) = (work.clone(), result.clone());
        let callback = Closure::once_into_js(move |_lock: JsValue| -> js_sys::Promise {
            wasm_bindgen_futures::future_to_promise(async move {
                let value = work().await;
                *slot.borrow_mut() = Some(value);
                Ok(JsValue::UNDEFINED)
            })
        });
        let Ok(promise) = request.call3(&locks, &JsValue::from_str(LOCK), &options, &callback)
        else {
            break;
        };
        // Rejected only when the wait timed out: then steal, on the next round.
        if JsFuture::from(js_sys::Promise::from(promise)).await.is_ok() {
            if let Some(value) = result.borrow_mut().take() {
                return value;
            }
        }
    }
    work().await
}
