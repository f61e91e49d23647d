//! The executable `server`: the command line over the `server` library, with the app's
//! pages handed to it. This crate (and its tests) alone depends on both, so after a change
//! in `app` only `app` and this crate are compiled again before the link.

mod pages;

use server::{
    cli::{self, Command},
    clock::{Clock, SystemClock},
    config::Settings,
    leptos_options, shutdown_signal, telemetry, Application,
};
use std::{
    io::{IsTerminal, Read},
    process::ExitCode,
    sync::Arc,
};

/// mimalloc rather than the system's allocator: under a steady load glibc's kept growing
/// (about 1 MB a minute with live memory flat: fragmentation across its per-thread
/// arenas); mimalloc's grows far less (`cargo xtask soak`, docs/operating.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match cli::parse(&args) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if command == Command::OpenApi {
        print!("{}", server::openapi::json());
        return ExitCode::SUCCESS;
    }
    if command == Command::BenchArgon2 {
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
    match command {
        Command::Serve => serve(settings).await,
        Command::BenchRotation => bench_rotation(&settings).await,
        Command::AdminCreate { email, name } => {
            let password = read_password();
            match cli::admin_create(&settings, &email, &name, password, SystemClock.unix()).await {
                Ok(created) => {
                    println!("created admin {email} ({})", created.id);
                    if let Some(password) = created.generated_password {
                        println!("generated password (shown once): {password}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("admin create: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::AdminPromote { email } => {
            match cli::admin_promote(&settings, &email, SystemClock.unix()).await {
                Ok(id) => {
                    println!("{email} ({id}) is now an admin");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("admin promote: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::KeysRotate => match async {
            let now = cli::database_now(&settings).await?;
            cli::keys_rotate(&settings, now).await
        }
        .await
        {
            Ok(key) => {
                println!(
                    "added key {}: published now, signs from {} (in {} s)",
                    key.kid,
                    when(key.signs_from),
                    key.signs_from - key.created_at
                );
                if key.signs_from - key.created_at < 300 {
                    println!(
                        "note: resource servers may cache the published keys for 300 s; tokens \
                         of this key may be refused by them until then (AUTH_KEY_PUBLISH_SECS)"
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("keys rotate: {e}");
                ExitCode::FAILURE
            }
        },
        Command::KeysList => match async {
            let now = cli::database_now(&settings).await?;
            cli::keys_list(&settings, now).await
        }
        .await
        {
            Ok(keys) => {
                println!(
                    "{:<44}  {:<8}  {:<20}  signs from",
                    "kid", "state", "created"
                );
                for key in keys {
                    println!(
                        "{:<44}  {:<8}  {:<20}  {}",
                        key.kid,
                        key.state.as_str(),
                        when(key.created_at),
                        when(key.signs_from)
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("keys list: {e}");
                ExitCode::FAILURE
            }
        },
        Command::OpenApi | Command::BenchArgon2 => ExitCode::SUCCESS,
    }
}

/// Prints the database's own refresh rotations/s (8 chains, 10 s each way: the better of
/// grouped and alone) for `cargo xtask bench`.
async fn bench_rotation(settings: &Settings) -> ExitCode {
    let measured = async {
        use secrecy::ExposeSecret;
        let db = server::db::Db::connect(settings.database_url.expose_secret())
            .await
            .map_err(|e| e.to_string())?;
        db.migrate().await.map_err(|e| e.to_string())?;
        let chains = 8;
        let mut best: f64 = 0.0;
        for writes in [
            server::rotation_ceiling::Writes::AsRefresh,
            server::rotation_ceiling::Writes::Alone,
        ] {
            let per_sec = server::rotation_ceiling::measure(
                &db,
                settings.lifetimes(),
                chains,
                std::time::Duration::from_secs(10),
                writes,
            )
            .await
            .map_err(|e| e.to_string())?;
            eprintln!("    {writes:?}: {per_sec:.0} rotations/s");
            best = best.max(per_sec);
        }
        Ok::<f64, String>(best)
    }
    .await;
    match measured {
        Ok(per_sec) => {
            println!("{per_sec:.0}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-rotation: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A Unix time as `2026-11-28T15:00:00Z`.
fn when(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// The password piped on stdin, without its trailing newline; none from a terminal.
fn read_password() -> Option<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return None;
    }
    let mut input = String::new();
    stdin.lock().read_to_string(&mut input).ok()?;
    let password = input.strip_suffix('\n').unwrap_or(&input);
    let password = password.strip_suffix('\r').unwrap_or(password);
    Some(password.to_string())
}

async fn serve(settings: Settings) -> ExitCode {
    telemetry::init(&settings.rust_log, settings.log_format);
    let options = leptos_options(&settings);
    let app =
        match Application::build(settings, options, pages::pages(), Arc::new(SystemClock)).await {
            Ok(app) => app,
            Err(e) => {
                tracing::error!(error = %e, "start-up failed");
                return ExitCode::FAILURE;
            }
        };
    let shutdown = shutdown_signal();
    tracing::info!(addr = %app.local_addr(), "listening");
    if let Some(addr) = app.metrics_addr() {
        tracing::info!(addr = %addr, "metrics listening");
    }
    match app.run_until(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server error");
            ExitCode::FAILURE
        }
    }
}
