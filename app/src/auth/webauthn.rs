//! The browser's WebAuthn, for passkeys: the server's options go in as JSON (through
//! `PublicKeyCredential.parseCreationOptionsFromJSON` / `parseRequestOptionsFromJSON`), the
//! authenticator's answer comes out as JSON (`PublicKeyCredential.toJSON()`), both in the
//! shapes webauthn-rs reads and writes. Called through `js_sys::Reflect`: these static
//! methods are newer than web-sys's bindings. The browser parses the options and writes the
//! credential: Rust never looks inside either.

use js_sys::{Function, Object, Promise, Reflect, JSON};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// Why no credential came back, in words for the page.
fn failed(error: JsValue) -> String {
    let name = Reflect::get(&error, &"name".into())
        .ok()
        .and_then(|n| n.as_string())
        .unwrap_or_default();
    match name.as_str() {
        // The person cancelled, or the dialog timed out (browsers do not say which).
        "NotAllowedError" => "The passkey request was cancelled or timed out.".into(),
        "InvalidStateError" => "This device already holds a passkey for your account.".into(),
        "SecurityError" => "Passkeys do not work on this address.".into(),
        _ => "This browser could not use a passkey.".into(),
    }
}

fn get(target: &JsValue, name: &str) -> Result<JsValue, String> {
    Reflect::get(target, &name.into()).map_err(|_| format!("no {name} in this browser"))
}

fn method(target: &JsValue, name: &str) -> Result<Function, String> {
    get(target, name)?
        .dyn_into::<Function>()
        .map_err(|_| "This browser does not support passkeys.".to_string())
}

/// Runs `navigator.credentials.<call>` (`create` or `get`) with the `publicKey` of the
/// server's options (as JSON, turned into the browser's own by `parser`), and returns the
/// credential as JSON.
async fn ceremony(json: &JsValue, parser: &str, call: &str) -> Result<String, String> {
    let unsupported = || "This browser does not support passkeys.".to_string();
    let class = get(&js_sys::global(), "PublicKeyCredential")?;
    if class.is_undefined() {
        return Err(unsupported());
    }
    let public_key = method(&class, parser)?
        .call1(&class, json)
        .map_err(failed)?;
    let argument = Object::new();
    Reflect::set(&argument, &"publicKey".into(), &public_key).map_err(|_| unsupported())?;
    let navigator = get(&js_sys::global(), "navigator")?;
    let credentials = get(&navigator, "credentials")?;
    let promise: Promise = method(&credentials, call)?
        .call1(&credentials, &argument)
        .map_err(failed)?
        .dyn_into()
        .map_err(|_| unsupported())?;
    let credential = JsFuture::from(promise).await.map_err(failed)?;
    if credential.is_null() {
        return Err("The passkey request was cancelled or timed out.".into());
    }
    let json = method(&credential, "toJSON")?
        .call0(&credential)
        .map_err(failed)?;
    Ok(JSON::stringify(&json).map_err(|_| unsupported())?.into())
}

/// A new passkey, from the `publicKey` of the server's creation options.
pub async fn create(options: &JsValue) -> Result<String, String> {
    ceremony(options, "parseCreationOptionsFromJSON", "create").await
}

/// A passkey's signed answer, from the `publicKey` of the server's request options.
pub async fn assert(options: &JsValue) -> Result<String, String> {
    ceremony(options, "parseRequestOptionsFromJSON", "get").await
}
