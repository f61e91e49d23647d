//! "Continue with <name>", one per identity provider, beside the password forms, and the
//! login page's words for a sign-in at a provider that came back with `?error=`.
//!
//! The list is the server's configuration: the server provides it as context and writes it
//! into the page's `<head>` (a `<meta>` the browser reads when it hydrates), so the buttons
//! are in the first HTML and work before the WASM has loaded (each is a plain link to the
//! provider's start route, which the router leaves to the browser: `rel="external"`).

use crate::api::{
    encode::percent_encode, next::provider_next, oidc_error_text, ErrorCode, ProviderInfo,
};
use leptos::prelude::*;
use leptos_router::hooks::use_location;

/// The identity providers of this server (empty when none is configured).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProviderList(pub Vec<ProviderInfo>);

/// The `<meta>` of the page's `<head>` that carries the list to the browser.
pub const META_NAME: &str = "oidc-providers";

impl ProviderList {
    /// The list as the `<meta>`'s content.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "[]".into())
    }

    /// In the browser: the list the server wrote into the page.
    #[cfg(feature = "hydrate")]
    pub fn from_page() -> ProviderList {
        let content = document()
            .query_selector(&format!("meta[name=\"{META_NAME}\"]"))
            .ok()
            .flatten()
            .and_then(|meta| meta.get_attribute("content"))
            .unwrap_or_default();
        ProviderList(serde_json::from_str(&content).unwrap_or_default())
    }
}

/// One button per provider, going back to the page's `?next=` after the sign-in (marked as
/// a sign-in's arrival: `provider_next`).
#[component]
pub fn ProviderButtons() -> impl IntoView {
    let providers = use_context::<ProviderList>().unwrap_or_default().0;
    let query = use_location().query;
    let next = move || query.with(|q| q.get("next"));
    (!providers.is_empty()).then(|| {
        view! {
            <div class="providers">
                {providers
                    .into_iter()
                    .map(|p| {
                        let start = format!("/api/auth/oidc/{}/start", p.id);
                        let href = move || {
                            let next = provider_next(next().as_deref());
                            format!("{start}?next={}", percent_encode(&next))
                        };
                        // A link that looks and acts as a button: a form would be held to the
                        // CSP's `form-action 'self'` through the redirect to the provider.
                        view! {
                            <a class="provider" role="button" href=href rel="external">
                                {format!("Continue with {}", p.name)}
                            </a>
                        }
                    })
                    .collect_view()}
                <p class="divider">"or"</p>
            </div>
        }
    })
}

/// What went wrong at a provider, from the page's `?error=` (the callback's code).
#[component]
pub fn ProviderError() -> impl IntoView {
    let query = use_location().query;
    move || {
        query.with(|q| q.get("error")).map(|code| {
            let code = ErrorCode::from_wire(&code);
            view! { <p class="form-error" role="alert">{oidc_error_text(code)}</p> }
        })
    }
}
