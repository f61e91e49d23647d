//! Cross-tab coordination, browser only: one refresh across the tabs of a browser under a
//! Web Lock, and tabs telling each other, memory to memory over a `BroadcastChannel`, about
//! new tokens and sign-outs.
//!
//! Every sign-in and sign-out starts a new *sign-in epoch*: a number that only grows (the
//! time of the sign-in in milliseconds, or one more than the last epoch seen), announced
//! with every message, so each tab knows the newest one it has heard of. It lets a tab
//! recognise an answer or a message that belongs to a sign-in that has ended since, and
//! drop it. Nothing here touches any storage.

pub use super::logic::TabMessage;
use std::{cell::RefCell, future::Future, rc::Rc};
use wasm_bindgen::{closure::Closure, JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

const CHANNEL: &str = "jwt-auth";
const LOCK: &str = "jwt-auth-refresh";
/// Held, shared, by every open tab for its whole life: how tabs count each other.
const PRESENCE: &str = "jwt-auth-tab";
/// Taken, under a name of its own (this prefix and a random part), by each holding of the
/// refresh lock: tells one holding from the next, even of the same tab.
const GRANT: &str = "jwt-auth-grant:";
/// The longest a request of the runtime (refresh, sign-in, sign-out) waits for its answer:
/// past it, it counts as no answer, so nothing waits on it for ever. Shorter than the
/// server's refresh grace (10 s) less the first retry's delay (at most 1 s), with room for
/// a slow machine: a refresh the server did carry out, but whose answer was given up, is
/// retried with the old cookie while the server still converges on it, rather than judged
/// a replay.
pub const ANSWER_WAIT_MS: u32 = 7_000;
/// How long a tab waits for the lock before taking it from a holder that is frozen or gone.
/// Longer than a holder's request may take ([`ANSWER_WAIT_MS`]): a live holder is never
/// robbed, so its answer's `Set-Cookie` can never land after the request of the tab that
/// took the lock (a sign-in's new cookie overwritten by an old session's, or cleared).
pub const LOCK_WAIT_MS: u32 = ANSWER_WAIT_MS + 1_000;

thread_local! {
    static EPOCH: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The newest sign-in epoch this tab knows of (0 in a new tab until it hears of one).
pub fn epoch() -> u64 {
    EPOCH.with(|e| e.get())
}

/// Takes note of an epoch another tab announced.
pub fn saw_epoch(epoch: u64) {
    EPOCH.with(|e| e.set(e.get().max(epoch)));
}

/// True when another tab could have started `epoch`: epochs are times, so one from more
/// than a minute in the future is forged (it would freeze every later epoch).
pub fn plausible_epoch(epoch: u64) -> bool {
    epoch <= (js_sys::Date::now() as u64).saturating_add(60_000)
}

/// Gives a sign-in or sign-out that failed its epoch back (nothing of the session
/// changed), unless another epoch was heard of since.
pub fn undo_epoch(started: u64, before: u64) {
    EPOCH.with(|e| {
        if e.get() == started {
            e.set(before);
        }
    });
}

/// Starts a new epoch (a sign-in or a sign-out begins) and returns it: newer than any
/// epoch of this browser, since it is at least the current time and at least one more
/// than any epoch this tab has heard of. Called under the refresh lock.
pub fn next_epoch() -> u64 {
    let next = (js_sys::Date::now() as u64).max(epoch().saturating_add(1));
    EPOCH.with(|e| e.set(next));
    next
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
                    .and_then(|text| TabMessage::read(&text))
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
        if let Some(text) = message.write() {
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

/// The names of the locks of this site held now; `None` when the browser cannot say.
async fn held_locks() -> Option<Vec<String>> {
    let (locks, query) = lock_method("query")?;
    let snapshot = query.call0(&locks).ok()?;
    let snapshot = JsFuture::from(js_sys::Promise::from(snapshot)).await.ok()?;
    let held = js_sys::Reflect::get(&snapshot, &JsValue::from_str("held")).ok()?;
    Some(
        js_sys::Array::from(&held)
            .iter()
            .filter_map(|lock| {
                js_sys::Reflect::get(&lock, &JsValue::from_str("name"))
                    .ok()
                    .and_then(|name| name.as_string())
            })
            .collect(),
    )
}

/// How many other tabs of this site are open (0 without Web Locks).
pub async fn other_tabs() -> usize {
    let tabs = held_locks()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|name| *name == PRESENCE)
        .count();
    tabs.saturating_sub(1)
}

/// How [`with_lock`] asks for the lock.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ask {
    /// Only if it is free now.
    IfFree,
    /// Waiting for it, [`LOCK_WAIT_MS`] at most.
    Wait,
    /// Taking it from its holder.
    Steal,
}

/// Who holds the refresh lock now.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Holding {
    Free,
    /// Held, by the names of the grants held (in the browser's order): the holding's, and
    /// those of robbed holdings of frozen tabs, which keep theirs until they run again.
    Granted(Vec<String>),
    /// Held, without a grant (yet): just taken, or by a tab of a version without grants.
    Ungranted,
    /// The browser cannot list locks.
    Unknown,
}

async fn current_holding() -> Holding {
    let Some(names) = held_locks().await else {
        return Holding::Unknown;
    };
    let grants: Vec<String> = names
        .iter()
        .filter(|name| name.starts_with(GRANT))
        .cloned()
        .collect();
    if !grants.is_empty() {
        Holding::Granted(grants)
    } else if names.iter().any(|name| name == LOCK) {
        Holding::Ungranted
    } else {
        Holding::Free
    }
}

/// After a wait of [`LOCK_WAIT_MS`] that began with `before` and ends with `now`: whether
/// one holding may have lasted all along (then it is frozen or hung, and is robbed).
fn held_all_along(before: &Holding, now: &Holding) -> bool {
    match (before, now) {
        (Holding::Granted(a), Holding::Granted(b)) => same_names(a, b),
        (Holding::Ungranted, Holding::Ungranted)
        | (Holding::Unknown, _)
        | (_, Holding::Unknown) => true,
        _ => false,
    }
}

/// Whether two lists of lock names hold the same names (each name is unique), in any
/// order: the browser's order of held locks is not specified. (Compared without sorting,
/// which would bring a sort's code into the WASM for lists of one or two names.)
fn same_names(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|name| b.contains(name))
}

/// Takes a lock under a name no one else uses, for as long as `held` is not resolved.
fn take_grant(held: futures::channel::oneshot::Receiver<()>) {
    let Some((locks, request)) = lock_method("request") else {
        return;
    };
    // A whole number: formatting a float would bring Rust's float printing into the WASM.
    let name = format!("{GRANT}{}", (js_sys::Math::random() * 9e15) as u64);
    let hold = Closure::once_into_js(move |_lock: JsValue| {
        wasm_bindgen_futures::future_to_promise(async move {
            let _ = held.await;
            Ok(JsValue::UNDEFINED)
        })
    });
    let _ = request.call2(&locks, &JsValue::from_str(&name), &hold);
}

/// Resolves after `ms` milliseconds.
pub async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = leptos::prelude::window()
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = JsFuture::from(promise).await;
}

/// Runs `work` while holding the cross-tab refresh lock. A tab that has waited
/// [`LOCK_WAIT_MS`] steals the lock, but only from a holding that lasted that whole wait
/// (each holding takes a grant lock of its own name, so two holdings of one tab are told
/// apart): a live holder's requests end sooner ([`ANSWER_WAIT_MS`]), so that one is frozen
/// or hung, and would otherwise block every other tab (a closed tab released it already).
/// A wait that ends with another holding than it began with (several tabs queued) starts
/// again. Where the browser cannot list locks, the tab steals after one wait. Without Web
/// Locks `work` runs at once, and the server's convergence is the backstop.
///
/// `work` runs once at most. When another tab steals the lock from us while `work` runs,
/// our request's promise rejects (`AbortError`) but `work` goes on: we wait for its result
/// rather than take the lock back and run it a second time.
///
/// `work` is told whether this tab queued for the lock (it was not free when asked, as the
/// browser decides; not after a steal): what the holding before did may not have reached
/// this tab yet, since its messages and the lock travel apart between tabs, and the lock
/// can come first.
pub async fn with_lock<T, Fut>(work: impl FnOnce(bool) -> Fut + 'static) -> T
where
    T: 'static,
    Fut: Future<Output = T> + 'static,
{
    let Some((locks, request)) = lock_method("request") else {
        return work(false).await;
    };
    let work: Rc<RefCell<Option<_>>> = Rc::new(RefCell::new(Some(work)));
    let (done, result) = futures::channel::oneshot::channel::<T>();
    let done = Rc::new(RefCell::new(Some(done)));
    // First only if the lock is free (the browser decides at once), so that a tab knows
    // whether it queued; then a wait, and maybe a steal.
    let mut ask = Ask::IfFree;
    let mut holding_before = Holding::Free;
    loop {
        let options = js_sys::Object::new();
        let (key, value): (&str, JsValue) = match ask {
            Ask::IfFree => ("ifAvailable", JsValue::TRUE),
            Ask::Wait => (
                "signal",
                web_sys::AbortSignal::timeout_with_u32(LOCK_WAIT_MS).into(),
            ),
            Ask::Steal => ("steal", JsValue::TRUE),
        };
        let _ = js_sys::Reflect::set(&options, &JsValue::from_str(key), &value);
        // Queued: the lock was not free. Not after a steal: the holding robbed is frozen or
        // gone, and has no news to send.
        let queued = ask == Ask::Wait;
        let (slot, done) = (work.clone(), done.clone());
        let callback = Closure::once_into_js(move |lock: JsValue| -> js_sys::Promise {
            wasm_bindgen_futures::future_to_promise(async move {
                // `null`: the lock was not free (asked only if it was).
                if lock.is_null() {
                    return Ok(JsValue::UNDEFINED);
                }
                let Some(work) = slot.borrow_mut().take() else {
                    return Ok(JsValue::UNDEFINED);
                };
                let (release, held) = futures::channel::oneshot::channel::<()>();
                take_grant(held);
                let value = work(queued).await;
                let _ = release.send(());
                if let Some(done) = done.borrow_mut().take() {
                    let _ = done.send(value);
                }
                Ok(JsValue::UNDEFINED)
            })
        });
        let Ok(promise) = request.call3(&locks, &JsValue::from_str(LOCK), &options, &callback)
        else {
            break;
        };
        let _ = JsFuture::from(js_sys::Promise::from(promise)).await;
        // Started (and maybe robbed of the lock since): its result comes, whatever the
        // promise said.
        if work.borrow().is_none() || ask == Ask::Steal {
            break;
        }
        let holding_now = current_holding().await;
        // Not free: wait, from the holding there is now. A wait that timed out: steal next
        // only when one holding lasted all along. (A steal always ends the loop.)
        ask = if ask == Ask::Wait && held_all_along(&holding_before, &holding_now) {
            Ask::Steal
        } else {
            Ask::Wait
        };
        holding_before = holding_now;
    }
    let pending = work.borrow_mut().take();
    match pending {
        // The lock could not be asked for at all: run unlocked.
        Some(work) => work(false).await,
        None => match result.await {
            Ok(value) => value,
            // The work was dropped unfinished (the page is going away): nothing to return
            // to; never settles, like the page itself.
            Err(_) => std::future::pending().await,
        },
    }
}
