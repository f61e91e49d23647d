use server::{
    clock::SystemClock, config::Settings, leptos_options, shutdown_signal, telemetry, Application,
};
use std::{process::ExitCode, sync::Arc};

#[tokio::main]
async fn main() -> ExitCode {
    // A developer tool for `cargo xtask bench`: the cost of one password hash here.
    if std::env::args().nth(1).as_deref() == Some("bench-argon2") {
        println!("{:.2}", server::auth::password::median_hash_ms(21));
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings.rust_log);

    let options = leptos_options(&settings);
    let app = match Application::build(settings, options, Arc::new(SystemClock)).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "start-up failed");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = shutdown_signal();
    tracing::info!(addr = %app.local_addr(), "listening");
    match app.run_until(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server error");
            ExitCode::FAILURE
        }
    }
}
