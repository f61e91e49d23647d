//! What start-up refuses: mail that would land in a production log, and key files others
//! can read. (The database files' permissions are tested in `db/mod.rs`.)

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

#[cfg(unix)]
#[test]
fn a_key_file_others_can_read_stops_start_up() {
    use std::os::unix::fs::PermissionsExt;
    for (var, file, mode) in [
        ("AUTH_KEY_FILE", "jwt.pem", 0o644),
        ("AUTH_SECRET_FILE", "secret.key", 0o620),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file);
        let mut rng = rand::rng();
        // Valid files, as a first start writes them; then opened up to others.
        server::auth::keys::load_or_create_signing_key(&dir.path().join("jwt.pem"), &mut rng)
            .unwrap();
        server::auth::keys::load_or_create_secret(&dir.path().join("secret.key"), &mut rng)
            .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let path_text = path.display().to_string();
        let (code, stderr) = run_server(
            dir.path(),
            &[
                (
                    "AUTH_KEY_FILE",
                    &dir.path().join("jwt.pem").display().to_string(),
                ),
                (
                    "AUTH_SECRET_FILE",
                    &dir.path().join("secret.key").display().to_string(),
                ),
                ("RUST_LOG", "info"),
                ("NO_COLOR", "1"),
            ],
        );
        assert_eq!(code, Some(1), "{var}: {stderr}");
        assert!(
            stderr.contains(&format!("chmod 600 {path_text}")),
            "{var}: {stderr}"
        );
    }
}
