//! The smallest hydrating Leptos 0.8 app with a router, meta tags and one form: what the
//! main WASM would weigh before any of the app's own code. Built, never served.

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Title};
use leptos_router::{
    components::{FlatRoutes, Route, Router, A},
    path,
};

#[component]
fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title text="floor"/>
        <Router>
            <nav><A href="/">"Home"</A><A href="/login">"Log in"</A></nav>
            <main>
                <FlatRoutes fallback=|| "Not found">
                    <Route path=path!("/") view=|| view! { <h1>"Home"</h1> }/>
                    <Route path=path!("/login") view=Login/>
                </FlatRoutes>
            </main>
        </Router>
    }
}

#[component]
fn Login() -> impl IntoView {
    let email = RwSignal::new(String::new());
    let said = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        #[cfg(feature = "fetch")]
        leptos::task::spawn_local(async move {
            said.set(Some(fetch::login(email.get_untracked()).await));
        });
        #[cfg(not(feature = "fetch"))]
        said.set(Some(format!("no account for {}", email.get_untracked())));
    };
    view! {
        <form on:submit=submit>
            {move || said.get().map(|text| view! { <p role="alert">{text}</p> })}
            <input type="email" bind:value=email/>
            <button type="submit">"Log in"</button>
        </form>
    }
}

#[cfg(feature = "fetch")]
mod fetch {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Session {
        access_token: String,
        expires_in: u64,
        user: User,
    }

    #[derive(serde::Serialize, serde::Deserialize)]
    struct User {
        id: String,
        email: String,
        name: String,
        role: String,
    }

    /// One JSON request and its typed answer, or why not.
    pub async fn login(email: String) -> String {
        let body = serde_json::json!({ "email": email }).to_string();
        let request = match gloo_net::http::Request::post("/api/auth/login").body(body) {
            Ok(request) => request,
            Err(e) => return e.to_string(),
        };
        match request.send().await {
            Ok(response) => match response.json::<Session>().await {
                Ok(session) => session.user.name,
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        }
    }
}

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
