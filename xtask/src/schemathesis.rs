//! Schemathesis against the release server: requests generated from the server's own
//! OpenAPI document (`/api/openapi.json`), every answer checked against that document.
//! Runs without a token, with a person's access token (the protected routes beyond 401),
//! and with an admin's on the admin routes (beyond 403).

use crate::{
    setup::{schemathesis_bin, SCHEMATHESIS},
    util::{command, free_port_below_ephemeral, output, root},
};
use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Stdio},
    thread,
    time::{Duration, Instant},
};

/// What every run checks: no 5xx, and every status code and body as the document says.
const CHECKS: &str = "not_a_server_error,response_schema_conformance,status_code_conformance";

/// Test cases per operation (Hypothesis' own default). All the runs over the document's 26
/// operations took about a minute on two cores; generating the requests takes most of it.
const MAX_EXAMPLES: &str = "100";

const ADMIN_EMAIL: &str = "schemathesis-admin@example.com";
const PERSON_EMAIL: &str = "schemathesis-person@example.com";
const ADMIN_PATHS: &str = "^/api/admin/";
const PASSWORD: &str = "schemathesis password";

pub fn run_all() -> Result<(), String> {
    // As for Playwright (end2end/playwright.config.ts): E2E_SERVER=target/debug/server runs
    // against the faster-to-build `cargo leptos build`.
    let binary = match std::env::var_os("E2E_SERVER") {
        Some(server) => root().join(server),
        None => root().join("target/release/server"),
    };
    if !binary.exists() || !root().join("target/site").exists() {
        return Err(format!(
            "{} or target/site is missing: run `cargo leptos build --release` first",
            binary.display()
        ));
    }
    let installed = output(command(schemathesis_bin()).arg("--version")).unwrap_or_default();
    if !installed.split_whitespace().any(|w| w == SCHEMATHESIS) {
        return Err(format!(
            "schemathesis {SCHEMATHESIS} is not in {}: run `cargo xtask setup`",
            schemathesis_bin().display()
        ));
    }
    let work = std::env::temp_dir().join(format!("xtask-schemathesis-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let result = against_server(&binary, &work);
    let _ = fs::remove_dir_all(&work);
    result
}

fn against_server(binary: &Path, work: &Path) -> Result<(), String> {
    // Below the ephemeral range, so that no outgoing connection holds it meanwhile.
    let port = free_port_below_ephemeral()?;
    let base = format!("http://127.0.0.1:{port}");
    // A fresh SQLite database and key files, as Playwright's server has (end2end/server-env.ts).
    let env = [
        ("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}")),
        ("LEPTOS_SITE_ROOT", "target/site".to_string()),
        (
            "DATABASE_URL",
            format!("sqlite://{}", work.join("schemathesis.db").display()),
        ),
        (
            "AUTH_KEY_FILE",
            work.join("jwt-ed25519.pem").display().to_string(),
        ),
        (
            "AUTH_SECRET_FILE",
            work.join("secret.key").display().to_string(),
        ),
        // A loopback public URL: mail (verification codes, reset links) goes to the log.
        ("PUBLIC_URL", base.clone()),
        // Schemathesis registers and logs in far more often than the limits allow.
        ("RATE_LIMIT_ENABLED", "false".to_string()),
        ("RUST_LOG", "warn".to_string()),
    ];

    // Admins come only from the command line, so the admin is made before the server starts.
    println!(
        "    $ {} admin create --email {ADMIN_EMAIL} --name Admin",
        binary.display()
    );
    let mut admin = command(binary)
        .args(["admin", "create", "--email", ADMIN_EMAIL, "--name", "Admin"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run the server's admin command: {e}"))?;
    if let Some(mut stdin) = admin.stdin.take() {
        writeln!(stdin, "{PASSWORD}").map_err(|e| format!("admin create: {e}"))?;
    }
    let status = admin.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("admin create failed ({status})"));
    }

    // Schemathesis 4 signs up through the document's register operation by itself when no
    // token is given; the run without a token is meant to be one.
    let config = work.join("schemathesis.toml");
    fs::write(&config, "[auth]\nauto-signup = false\n")
        .map_err(|e| format!("cannot write {}: {e}", config.display()))?;

    let log = work.join("server.log");
    let server = Server::start(binary, &env, &log, &base)?;
    let schema = format!("{base}/api/openapi.json");
    if output(command("curl").args(["-sf", "-o", "/dev/null", &schema])).is_none() {
        return Err(format!("the server does not serve {schema}"));
    }
    // The person registers before any run, so that no generated request can take the address.
    sign_in(
        &base,
        "/api/auth/register",
        &format!(r#"{{"email":"{PERSON_EMAIL}","password":"{PASSWORD}","name":"Person"}}"#),
    )?;
    // A run may end its own token's session: Schemathesis reuses the ids that answers show,
    // so it finds that session, and the admin's own id. So each run signs in afresh, and the
    // operations that can end it (deleting a session; revoking, disabling or demoting
    // people) run apart, after the others. Filters of one kind (include, exclude) are joined
    // by "or".
    let runs: [(&str, Option<&str>, &[&str]); 5] = [
        ("without a token", None, &[]),
        // The admin routes only answer 403 to a person: the admin's runs cover them.
        (
            "as a person",
            Some(PERSON_EMAIL),
            &[
                "--exclude-path-regex",
                ADMIN_PATHS,
                "--exclude-method",
                "DELETE",
            ],
        ),
        (
            "as a person, deleting",
            Some(PERSON_EMAIL),
            &[
                "--exclude-path-regex",
                ADMIN_PATHS,
                "--include-method",
                "DELETE",
            ],
        ),
        (
            "as an admin, reading",
            Some(ADMIN_EMAIL),
            &[
                "--include-path-regex",
                ADMIN_PATHS,
                // Every method but GET.
                "--exclude-method-regex",
                "^(?!GET$)",
            ],
        ),
        (
            "as an admin, changing people",
            Some(ADMIN_EMAIL),
            &[
                "--include-path-regex",
                ADMIN_PATHS,
                "--exclude-method",
                "GET",
            ],
        ),
    ];
    // Every run goes ahead when an earlier one failed, so one test run reports them all.
    let mut failed = Vec::new();
    for (name, who, filter) in runs {
        println!("\n    --- Schemathesis {name}");
        let token = match who {
            Some(email) => Some(sign_in(
                &base,
                "/api/auth/login",
                &format!(r#"{{"email":"{email}","password":"{PASSWORD}"}}"#),
            )?),
            None => None,
        };
        if let Err(e) = schemathesis(work, &config, &schema, token.as_deref(), filter) {
            println!("    {e}");
            failed.push(name);
        }
    }
    if !failed.is_empty() {
        server.print_log_tail();
        return Err(format!("Schemathesis failed {}", failed.join(", ")));
    }
    Ok(())
    // `server` stops here, also when a run failed.
}

fn schemathesis(
    work: &Path,
    config: &Path,
    schema: &str,
    token: Option<&str>,
    filter: &[&str],
) -> Result<(), String> {
    let config = config.display().to_string();
    let mut args = vec![
        "--config-file",
        &config,
        "run",
        schema,
        "--checks",
        CHECKS,
        "--max-examples",
        MAX_EXAMPLES,
        // Found failures are not kept between runs (the temp folder goes); a failure
        // prints the seed that repeats it.
        "--generation-database",
        "none",
    ];
    args.extend(filter);
    let header = token.map(|token| format!("Authorization: Bearer {token}"));
    // The command as printed leaves out the token: hundreds of characters of noise.
    println!(
        "    $ {} {}{}",
        schemathesis_bin().display(),
        args.join(" "),
        if header.is_some() {
            " --header 'Authorization: Bearer <token>'"
        } else {
            ""
        }
    );
    let mut cmd = command(schemathesis_bin());
    // In the temp folder: Schemathesis and Hypothesis keep caches (`.schemathesis/`,
    // `.hypothesis/`) in the working directory.
    cmd.current_dir(work).args(&args);
    if let Some(header) = &header {
        cmd.args(["--header", header]);
    }
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start schemathesis: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("schemathesis failed ({status})"))
    }
}

/// Registers or logs in with a JSON body and returns the access token of the answer.
fn sign_in(base: &str, path: &str, body: &str) -> Result<String, String> {
    let answer = output(command("curl").args([
        "--silent",
        "--show-error",
        "--fail",
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "-d",
        body,
        &format!("{base}{path}"),
    ]))
    .ok_or(format!("POST {path} failed"))?;
    let start = r#""access_token":""#;
    let from = answer
        .find(start)
        .map(|at| at + start.len())
        .ok_or(format!("POST {path}: no access token in {answer}"))?;
    let len = answer[from..]
        .find('"')
        .ok_or(format!("POST {path}: no access token in {answer}"))?;
    Ok(answer[from..from + len].to_string())
}

/// The release server, its output in a log file; stopped on drop.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn start(
        binary: &Path,
        env: &[(&str, String)],
        log: &Path,
        base: &str,
    ) -> Result<Server, String> {
        let cannot = |e: std::io::Error| format!("cannot create {}: {e}", log.display());
        let stdout = fs::File::create(log).map_err(cannot)?;
        // One open file for both, so that neither writes over the other.
        let stderr = stdout.try_clone().map_err(cannot)?;
        let child = command(binary)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start the server: {e}"))?;
        let mut server = Server {
            child,
            log: log.to_path_buf(),
        };
        println!("    server: {} at {base}", binary.display());
        let started = Instant::now();
        while output(command("curl").args(["-sf", &format!("{base}/healthz")])).is_none() {
            if let Ok(Some(status)) = server.child.try_wait() {
                server.print_log_tail();
                return Err(format!("the server stopped ({status})"));
            }
            if started.elapsed() > Duration::from_secs(30) {
                server.print_log_tail();
                return Err("the server did not answer /healthz within 30 s".into());
            }
            thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }

    fn print_log_tail(&self) {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        println!("    the server's last log lines:");
        for line in &lines[lines.len().saturating_sub(40)..] {
            println!("    | {line}");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
