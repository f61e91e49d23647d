//! What start-up refuses: mail that would land in a production log.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// Runs the real binary in `dir` with `vars`; its exit code, and what it printed (the log
/// goes to stdout, a configuration error to stderr).
fn run_server(dir: &std::path::Path, vars: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_server"));
    command
        .current_dir(dir)
        .env_remove("SMTP_URL")
        .env_remove("PUBLIC_URL")
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in vars {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("run server");
    // A server that starts when it should have refused would serve forever.
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("output");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), printed)
}

#[test]
fn a_public_address_without_smtp_url_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = run_server(dir.path(), &[("PUBLIC_URL", "https://auth.example.com")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("SMTP_URL"), "{stderr}");
    assert!(
        stderr.contains("SMTP_URL=log"),
        "says how to go on: {stderr}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "nothing was created before the refusal"
    );
}
