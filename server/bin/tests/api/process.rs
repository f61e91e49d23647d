//! The real binary: it refuses to start on a bad setting, naming it, and stops cleanly on SIGTERM.

use std::process::Command;

fn run_server_with(var: &str, value: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_server"))
        .current_dir(dir.path())
        .env(var, value)
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .output()
        .expect("run server");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_bad_value_stops_start_up_naming_the_variable() {
    for (var, value) in [
        ("AUTH_ACCESS_TTL_SECS", "fifteen"),
        ("COOKIE_SECURE", "perhaps"),
        ("DATABASE_URL", "mysql://db/app"),
        ("PUBLIC_URL", "not a url"),
    ] {
        let (code, stderr) = run_server_with(var, value);
        assert_eq!(code, Some(2), "{var}={value}: {stderr}");
        assert!(stderr.contains(var), "{var}={value}: {stderr}");
    }
}

#[test]
fn a_dotenv_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "AUTH_REFRESH_GRACE_SECS=soon\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_server"))
        .current_dir(dir.path())
        .env_remove("AUTH_REFRESH_GRACE_SECS")
        .output()
        .expect("run server");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("AUTH_REFRESH_GRACE_SECS"), "{stderr}");
}

#[test]
fn sigterm_stops_the_server_gracefully() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
        .current_dir(dir.path())
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run server");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.contains("listening"));
    assert!(listening, "the server said it listens");
    // SAFETY: signalling our own child process by its id.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}: {rest:?}");
    assert!(rest.iter().any(|l| l.contains("shutting down")), "{rest:?}");
    // The database folder and key files were created on first start.
    for file in ["data/app.db", "data/jwt-ed25519.pem", "data/secret.key"] {
        assert!(dir.path().join(file).exists(), "{file}");
    }
}

mod admin_cli {
    use server::{
        auth::password::Passwords,
        db::{
            users::{self, NewUser},
            Db,
        },
    };
    use std::{io::Write, process::Command};

    fn admin(dir: &std::path::Path, args: &[&str], stdin: &str) -> (bool, String, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
            .current_dir(dir)
            .args(args)
            .env("DATABASE_URL", format!("sqlite://{}/app.db", dir.display()))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run server");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    async fn db(dir: &std::path::Path) -> Db {
        Db::connect(&format!("sqlite://{}/app.db", dir.display()))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn admin_create_with_a_password_from_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let (ok, stdout, stderr) = admin(
            dir.path(),
            &[
                "admin",
                "create",
                "--email",
                "Root@Example.com",
                "--name",
                "Root",
            ],
            "a long admin password\n",
        );
        assert!(ok, "{stdout} {stderr}");
        assert!(
            !stdout.contains("a long admin password"),
            "the password is never echoed"
        );
        let db = db(dir.path()).await;
        let row = users::find_by_email(db.pool(), "root@example.com")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.role, server::db::users::Role::Admin);
        let passwords = Passwords::new(1, std::time::Duration::from_secs(5)).unwrap();
        let secret = secrecy::SecretString::from("a long admin password".to_string());
        assert!(
            passwords
                .verify(&secret, Some(&row.password_hash))
                .await
                .unwrap()
                .valid
        );

        // A second admin with the same email is refused.
        let (ok, _, stderr) = admin(
            dir.path(),
            &[
                "admin",
                "create",
                "--email",
                "root@example.com",
                "--name",
                "Again",
            ],
            "another password\n",
        );
        assert!(!ok);
        assert!(stderr.contains("already exists"), "{stderr}");
    }

    #[tokio::test]
    async fn admin_create_generates_and_prints_a_password_once() {
        let dir = tempfile::tempdir().unwrap();
        let (ok, stdout, stderr) = admin(
            dir.path(),
            &[
                "admin",
                "create",
                "--email",
                "ops@example.com",
                "--name",
                "Ops",
            ],
            "",
        );
        assert!(ok, "{stdout} {stderr}");
        let password = stdout
            .lines()
            .find_map(|l| l.strip_prefix("generated password (shown once): "))
            .expect("the generated password is printed")
            .to_string();
        assert!(password.len() >= 32);
        let db = db(dir.path()).await;
        let row = users::find_by_email(db.pool(), "ops@example.com")
            .await
            .unwrap()
            .unwrap();
        let passwords = Passwords::new(1, std::time::Duration::from_secs(5)).unwrap();
        let secret = secrecy::SecretString::from(password);
        assert!(
            passwords
                .verify(&secret, Some(&row.password_hash))
                .await
                .unwrap()
                .valid
        );
    }

    #[tokio::test]
    async fn admin_create_validates_its_input() {
        let dir = tempfile::tempdir().unwrap();
        let (ok, _, stderr) = admin(
            dir.path(),
            &["admin", "create", "--email", "nope", "--name", "X"],
            "short\n",
        );
        assert!(!ok);
        assert!(
            stderr.contains("email") && stderr.contains("password"),
            "{stderr}"
        );
        let (ok, _, stderr) = admin(dir.path(), &["admin", "create", "--email", "a@b.co"], "");
        assert!(!ok);
        assert!(stderr.contains("--name"), "{stderr}");
    }

    #[tokio::test]
    async fn admin_promote_makes_a_verified_person_an_admin() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(dir.path()).await;
        db.migrate().await.unwrap();
        users::insert(
            db.pool(),
            NewUser {
                id: "7d3b7f3e-0000-4000-8000-000000000001",
                email: "grace@example.com",
                name: "Grace",
                password_hash: "x",
                role: server::db::users::Role::User,
                now: 0,
            },
        )
        .await
        .unwrap();
        // Not yet verified: whoever registered the address may not own it.
        let (ok, _, stderr) = admin(
            dir.path(),
            &["admin", "promote", "--email", "GRACE@example.com"],
            "",
        );
        assert!(!ok);
        assert!(stderr.contains("not verified"), "{stderr}");
        let row = users::find_by_email(db.pool(), "grace@example.com")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.role, server::db::users::Role::User, "nothing changed");

        users::mark_email_verified(db.pool(), "7d3b7f3e-0000-4000-8000-000000000001", 0)
            .await
            .unwrap();
        let (ok, stdout, stderr) = admin(
            dir.path(),
            &["admin", "promote", "--email", "GRACE@example.com"],
            "",
        );
        assert!(ok, "{stdout} {stderr}");
        let row = users::find_by_email(db.pool(), "grace@example.com")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.role, server::db::users::Role::Admin);
        let (ok, _, stderr) = admin(
            dir.path(),
            &["admin", "promote", "--email", "nobody@example.com"],
            "",
        );
        assert!(!ok);
        assert!(stderr.contains("no account"), "{stderr}");
    }
}

#[test]
fn keys_rotate_adds_a_published_key_and_keys_list_shows_each_state() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_server"))
            .current_dir(dir.path())
            .args(args)
            .env(
                "DATABASE_URL",
                format!("sqlite://{}/app.db", dir.path().display()),
            )
            .output()
            .expect("run server");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    // On a new database the key file (generated) is imported first, then replaced.
    let said = run(&["keys", "rotate"]);
    assert!(said.starts_with("added key "), "{said}");
    assert!(said.contains("published now, signs from "), "{said}");
    assert!(said.trim_end().ends_with("(in 600 s)"), "{said}");
    let kid = said["added key ".len()..]
        .split(':')
        .next()
        .unwrap()
        .to_string();
    assert!(dir.path().join("data/jwt-ed25519.pem").exists());
    let listed = run(&["keys", "list"]);
    let rows: Vec<Vec<&str>> = listed
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{listed}");
    assert_eq!(rows[0][1], "current", "{listed}");
    assert_eq!(rows[1][..2], [kid.as_str(), "next"], "{listed}");
}
