//! The app's pages as the server takes them. One definition for the binary (`main.rs`) and
//! the integration tests (`tests/api/main.rs` includes this file), so the tests serve what
//! the binary serves.

use server::pages::Pages;

pub fn pages() -> Pages {
    Pages {
        routes: leptos_axum::generate_route_list(app::App),
        shell: app::any_shell,
        provide_providers: app::provide_providers,
    }
}
