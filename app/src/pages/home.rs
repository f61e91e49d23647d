use leptos::prelude::*;

#[component]
pub fn HomePage() -> impl IntoView {
    view! {
        <section class="hero">
            <h1>"Browser sign-in with JWTs, done right"</h1>
            <p>
                "Short-lived access tokens live only in memory; the refresh token lives in an "
                "HTTP-only cookie and rotates on every use. Two tabs racing converge; a thief "
                "replaying an old token ends the whole session."
            </p>
        </section>
    }
}
