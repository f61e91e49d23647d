//! Project tasks: `cargo xtask setup | serve | test`.
//!
//! Installs only what is missing, says what it does and how long each step took. It has no
//! dependencies so that it builds in seconds on a fresh machine.

mod bench;
mod floor;
mod postgres;
mod schemathesis;
mod setup;
mod soak;
mod util;
mod watch;

use std::{process::ExitCode, time::Instant};
use util::{cargo, run, Steps};

const USAGE: &str = "\
usage: cargo xtask <command>

  setup   install the tools the project needs (only what is missing)
  serve   build the release site and serve it at http://127.0.0.1:3000 (SQLite)
  test    run every test: rustfmt, clippy (ssr and wasm32 hydrate), unit and
          integration tests on SQLite and PostgreSQL, Playwright on a release build,
          Schemathesis against its OpenAPI document
  test-balanced
          only the sign-in and many-tabs Playwright specs through nginx in front of
          two release instances on a throwaway PostgreSQL (builds the release first)
  test-postgres [FILTER]
          only the integration tests, on a throwaway PostgreSQL server (those
          whose names contain FILTER, as with cargo test)
  test-faults
          only the fault test that stops and starts a throwaway PostgreSQL server
          under load (the other fault tests run with the integration tests)
  schemathesis
          only the Schemathesis runs against the OpenAPI document of the release
          build already there (target/release/server, after `cargo leptos build
          --release`; E2E_SERVER=target/debug/server takes the debug build's)
  watch-timing
          how long `cargo leptos watch` takes to serve the first page, then to
          show a one-line change in app (three changes; figures, not a test)
  wasm-floor
          build the smallest hydrating Leptos app as the release build builds the
          app's WASM and print its sizes: the floor of the main WASM (figures)
  bench   load the release server with wrk and print the figures F1-F5 (`bench f2`: the
          refresh figures against the database's own ceiling only)
  soak [SECONDS]
          the release server under a mixed load (logins, refreshes, /api/me) at
          about half its capacity for SECONDS (600): no error, and its memory at
          the end within 10 % of its value after the first minute
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let started = Instant::now();
    let mut steps = Steps::default();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup::all(&mut steps),
        Some("serve") => serve(&mut steps),
        Some("test") => test(&mut steps),
        Some("bench") if args.get(1).map(String::as_str) == Some("f2") => {
            setup::build_tools(&mut steps).and_then(|()| {
                steps.run(
                    "benchmark: refresh against its ceiling",
                    bench::refresh_only,
                )
            })
        }
        Some("bench") => {
            setup::build_tools(&mut steps).and_then(|()| steps.run("benchmark", bench::run_all))
        }
        Some("soak") => setup::build_tools(&mut steps)
            .and_then(|()| steps.run("soak", || soak::run_all(&args[1..]))),
        Some("test-balanced") => setup::all(&mut steps)
            .and_then(|()| steps.run(RELEASE_STEP, util::release_build))
            .and_then(|()| {
                steps.run(
                    "Playwright through nginx, two instances on PostgreSQL",
                    balanced_playwright,
                )
            }),
        Some("watch-timing") => setup::build_tools(&mut steps).and_then(|()| {
            steps.run(
                "cargo leptos watch: first page, then a change",
                watch::run_all,
            )
        }),
        Some("wasm-floor") => setup::build_tools(&mut steps)
            .and_then(|()| steps.run("the main WASM's floor", floor::run_all)),
        Some("schemathesis") => setup::schemathesis(&mut steps)
            .and_then(|()| steps.run(SCHEMATHESIS_STEP, schemathesis::run_all)),
        Some("test-faults") => steps
            .run("PostgreSQL server (Debian)", setup::postgres)
            .and_then(|()| steps.run(FAULTS_STEP, fault_tests)),
        Some("test-postgres") => steps
            .run("PostgreSQL server (Debian)", setup::postgres)
            .and_then(|()| postgres_tests(&mut steps, &args[1..])),
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    steps.print_summary(started.elapsed());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nxtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(steps: &mut Steps) -> Result<(), String> {
    setup::build_tools(steps)?;
    println!("\n==> serving at http://127.0.0.1:3000 (ctrl-c stops)");
    run(&mut util::release_command("serve"))
}

const RELEASE_STEP: &str = "release build (split, hashed, precompressed)";

/// The integration tests on a throwaway PostgreSQL server; `filter` (test names, or `--`
/// and the test binary's options) as `cargo test` takes it.
fn postgres_tests(steps: &mut Steps, filter: &[String]) -> Result<(), String> {
    steps.run("integration tests (PostgreSQL)", || {
        let pg = postgres::Throwaway::start()?;
        run(cargo()
            .args(["test", "--package", "server-bin", "--test", "api"])
            .args(filter)
            .env("TEST_DATABASE_URL", pg.url()))
        // `pg` stops here, also when the tests failed.
    })
}

const FAULTS_STEP: &str = "fault test: PostgreSQL stopped and started under load";

/// The fault test that stops PostgreSQL (`server/bin/tests/api/faults.rs`), with a server of
/// its own: no other test sees it go down. (The other fault tests run with the rest.)
const FAULT_TEST: &str =
    "faults::postgres_stopped_under_load_answers_unavailable_and_the_server_recovers_by_itself";

fn fault_tests() -> Result<(), String> {
    let pg = postgres::Throwaway::start()?;
    let out = cargo()
        .args([
            "test",
            "--package",
            "server-bin",
            "--test",
            "api",
            "--",
            "--exact",
        ])
        .arg(FAULT_TEST)
        // Its figures (answers, time to recover) belong in the log.
        .arg("--nocapture")
        .env("TEST_DATABASE_URL", pg.url())
        .envs(pg.control_env())
        // Missing settings fail the test here instead of skipping it.
        .env("FAULT_PG_REQUIRED", "1")
        .output()
        .map_err(|e| format!("cannot run cargo test: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        return Err(format!("the fault test failed ({})", out.status));
    }
    // A renamed test would otherwise pass here by running nothing.
    if !stdout.contains("test result: ok. 1 passed") {
        return Err(format!("{FAULT_TEST} did not run"));
    }
    Ok(())
}

/// The server side's packages, the workspace's default members: the API's types, the app,
/// the server's library and its executable (with the integration tests).
const SERVER_SIDE: [&str; 8] = [
    "--package",
    "api",
    "--package",
    "app",
    "--package",
    "server",
    "--package",
    "server-bin",
];

fn test(steps: &mut Steps) -> Result<(), String> {
    setup::all(steps)?;
    steps.run("rustfmt check", || {
        run(cargo().args(["fmt", "--all", "--", "--check"]))
    })?;
    steps.run("clippy, server side (ssr)", || {
        run(cargo().arg("clippy").args(SERVER_SIDE).args([
            "--package",
            "xtask",
            "--all-targets",
            "--",
            "--deny",
            "warnings",
        ]))
    })?;
    steps.run("clippy, browser side (hydrate, wasm32)", || {
        run(cargo().args([
            "clippy",
            "--package",
            "frontend",
            "--package",
            "app",
            "--target",
            "wasm32-unknown-unknown",
            "--",
            "--deny",
            "warnings",
        ]))
    })?;
    steps.run("unit and integration tests (SQLite)", || {
        run(cargo().arg("test").args(SERVER_SIDE))
    })?;
    postgres_tests(steps, &[])?;
    steps.run(FAULTS_STEP, fault_tests)?;
    steps.run(RELEASE_STEP, util::release_build)?;
    steps.run("Playwright against the release build", || {
        // The app, maildev's SMTP and HTTP sides, and the test OpenID provider (Playwright
        // starts all three servers).
        let ports = util::free_ports::<4>()?;
        run(util::npx(["playwright", "test"])
            .env("E2E_PORT", ports[0].to_string())
            .env("E2E_SMTP_PORT", ports[1].to_string())
            .env("E2E_MAILDEV_PORT", ports[2].to_string())
            .env("E2E_OIDC_PORT", ports[3].to_string())
            // The build above is hashed and precompressed: loading.spec.ts must not skip.
            .env("E2E_HASHED", "1"))
    })?;
    steps.run(
        "Playwright through nginx, two instances on PostgreSQL",
        balanced_playwright,
    )?;
    steps.run(SCHEMATHESIS_STEP, schemathesis::run_all)?;
    Ok(())
}

const SCHEMATHESIS_STEP: &str = "Schemathesis against the release build's OpenAPI document";

/// The auth and many-tabs specs once more, through nginx balancing round-robin over two
/// release instances that share a throwaway PostgreSQL database.
fn balanced_playwright() -> Result<(), String> {
    let pg = postgres::Throwaway::start()?;
    let ports = util::free_ports::<5>()?;
    run(util::npx([
        "playwright",
        "test",
        "tests/auth.spec.ts",
        "tests/tabs.spec.ts",
    ])
    .env("E2E_LB", "1")
    .env("E2E_DATABASE_URL", pg.url())
    .env("E2E_PORT", ports[0].to_string())
    .env("E2E_LB_PORTS", format!("{},{}", ports[1], ports[2]))
    .env("E2E_SMTP_PORT", ports[3].to_string())
    .env("E2E_MAILDEV_PORT", ports[4].to_string()))
    // `pg` stops here, also when the tests failed.
}
