//! `cargo xtask bench`: the release server under load from wrk (Debian), every ratio of
//! the table measured in one run on this machine. A benchmark, never a test: it prints
//! figures and fails only when it cannot measure.

use crate::{
    postgres,
    setup::apt_install,
    util::{command, free_port, output, root, run},
};
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

const SECONDS: &str = "10s";

pub fn run_all() -> Result<(), String> {
    if output(Command::new("wrk").arg("--version")).is_none() && !Path::new("/usr/bin/wrk").exists()
    {
        apt_install(&["wrk"])?;
    }
    run(crate::util::cargo().args(["leptos", "build", "--release"]))?;
    let binary = root().join("target/release/server");
    let argon2_ms: f64 = output(Command::new(&binary).arg("bench-argon2"))
        .and_then(|s| s.trim().parse().ok())
        .ok_or("cannot measure one argon2 hash")?;
    let cores = thread::available_parallelism().map_or(1, |n| n.get());

    let work = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
    fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let result = (|| {
        let sqlite = Server::start(
            &binary,
            &work,
            &format!("sqlite://{}/bench.db", work.display()),
        )?;
        let f1 = f1(&sqlite)?;
        let f2_sqlite = f2(&sqlite, &work)?;
        let (logins, f3) = f3(&sqlite, &work, cores, argon2_ms)?;
        let f4 = f4(&sqlite, &work)?;
        drop(sqlite);

        let pg = postgres::Throwaway::start()?;
        let pg_server = Server::start(&binary, &work, &pg.url())?;
        let f2_pg = f2(&pg_server, &work)?;
        drop(pg_server);
        drop(pg);

        println!("\n==> results ({cores} cores; one argon2id hash = {argon2_ms:.1} ms)\n");
        println!("| figure | measured | goal |");
        println!("|---|---|---|");
        println!(
            "| F1 = GET /api/me req/s ÷ GET /healthz req/s | {:.0} ÷ {:.0} = **{:.2}** | ≥ 0.90 |",
            f1.0,
            f1.1,
            f1.0 / f1.1
        );
        println!("| F2 refresh rotations/s, SQLite (8 chains) | **{:.0}**/s, {} non-2xx | zero non-2xx |", f2_sqlite.0, f2_sqlite.1);
        println!("| F2 refresh rotations/s, PostgreSQL (8 chains) | **{:.0}**/s, {} non-2xx | zero non-2xx |", f2_pg.0, f2_pg.1);
        println!(
            "| F3 = logins/s ÷ (cores × 1000 / argon2 ms) | {logins:.1} ÷ {:.1} = **{f3:.2}** | ≥ 0.90 |",
            cores as f64 * 1000.0 / argon2_ms
        );
        println!(
            "| F4 = /healthz p99 under a login flood ÷ idle p99 | {:.2} ms ÷ {:.2} ms = **{:.2}** | ≤ 2 |",
            f4.1, f4.0, f4.1 / f4.0
        );
        Ok(())
    })();
    let _ = fs::remove_dir_all(&work);
    result
}

/// The release server on a private port, stopped on drop.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(binary: &Path, work: &Path, database_url: &str) -> Result<Server, String> {
        let port = free_port()?;
        let child = command(binary)
            .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", database_url)
            .env("AUTH_KEY_FILE", work.join("jwt.pem"))
            .env("AUTH_SECRET_FILE", work.join("secret.key"))
            .env("RATE_LIMIT_ENABLED", "false")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the server: {e}"))?;
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while output(command("curl").args(["-sf", &format!("{}/readyz", server.base)])).is_none() {
            if started.elapsed() > Duration::from_secs(30) {
                return Err("the server did not become ready".into());
            }
            thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Registers a person (or logs in when `login`) and returns (access token, refresh token).
    fn sign_in(&self, email: &str, login: bool) -> Result<(String, String), String> {
        let (path, body) = if login {
            (
                "/api/auth/login",
                format!(r#"{{"email":"{email}","password":"{PASSWORD}"}}"#),
            )
        } else {
            (
                "/api/auth/register",
                format!(r#"{{"email":"{email}","password":"{PASSWORD}","name":"Bench"}}"#),
            )
        };
        let response = output(command("curl").args([
            "-si",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
            &body,
            &self.url(path),
        ]))
        .ok_or("sign-in request failed")?;
        let access = between(&response, "\"access_token\":\"", "\"")
            .ok_or(format!("no access token: {response}"))?;
        let refresh = between(&response, "refresh_token=", ";").ok_or("no refresh cookie")?;
        Ok((access, refresh))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const PASSWORD: &str = "benchmark password";

fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(text[from..from + len].to_string())
}

/// What wrk printed: requests/s, non-2xx count, p99 in ms (with `--latency`).
struct Wrk {
    rps: f64,
    non_2xx: u64,
    p99_ms: Option<f64>,
}

fn wrk(args: &[&str]) -> Result<Wrk, String> {
    println!("    $ wrk {}", args.join(" "));
    let out = Command::new("wrk")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or(format!("no Requests/sec in: {text}"))?;
    let non_2xx = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let p99_ms = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .and_then(|v| duration_ms(v.trim()));
    println!(
        "      {rps:.0} req/s, {non_2xx} non-2xx{}",
        p99_ms
            .map(|p| format!(", p99 {p:.2} ms"))
            .unwrap_or_default()
    );
    Ok(Wrk {
        rps,
        non_2xx,
        p99_ms,
    })
}

fn duration_ms(v: &str) -> Option<f64> {
    let split = v.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse().ok()?;
    match unit {
        "us" => Some(n / 1000.0),
        "ms" => Some(n),
        "s" => Some(n * 1000.0),
        "m" => Some(n * 60_000.0),
        _ => None,
    }
}

fn lua(work: &Path, name: &str, script: &str) -> Result<PathBuf, String> {
    let path = work.join(name);
    fs::write(&path, script).map_err(|e| e.to_string())?;
    Ok(path)
}

/// (me req/s, healthz req/s).
fn f1(server: &Server) -> Result<(f64, f64), String> {
    println!("\n==> F1: GET /api/me against GET /healthz");
    let (access, _) = server.sign_in("f1@example.com", false)?;
    let auth = format!("Authorization: Bearer {access}");
    let healthz = wrk(&["-t2", "-c32", "-d", SECONDS, &server.url("/healthz")])?;
    let me = wrk(&[
        "-t2",
        "-c32",
        "-d",
        SECONDS,
        "-H",
        &auth,
        &server.url("/api/me"),
    ])?;
    if me.non_2xx > 0 {
        return Err(format!("{} /api/me answers were not 200", me.non_2xx));
    }
    Ok((me.rps, healthz.rps))
}

/// (rotations/s, non-2xx): one token chain per connection.
fn f2(server: &Server, work: &Path) -> Result<(f64, u64), String> {
    println!("\n==> F2: refresh rotations, one chain per connection");
    const CHAINS: usize = 8;
    let run_id = free_port()?;
    let mut tokens = Vec::new();
    for i in 0..CHAINS {
        tokens.push(
            server
                .sign_in(&format!("f2-{run_id}-{i}@example.com"), false)?
                .1,
        );
    }
    let list = tokens
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let script = lua(
        work,
        "refresh.lua",
        &format!(
            r#"local tokens = {{ {list} }}
local next_index = 0
function setup(thread)
  next_index = next_index + 1
  thread:set("index", next_index)
end
function init(args)
  token = tokens[index]
end
function request()
  return wrk.format("POST", "/api/auth/refresh", {{ ["Cookie"] = "refresh_token=" .. token }})
end
function response(status, headers, body)
  for name, value in pairs(headers) do
    if string.lower(name) == "set-cookie" then
      local t = string.match(value, "refresh_token=([^;]+)")
      if t then token = t end
    end
  end
end
"#
        ),
    )?;
    let threads = format!("-t{CHAINS}");
    let connections = format!("-c{CHAINS}");
    let result = wrk(&[
        &threads,
        &connections,
        "-d",
        SECONDS,
        "-s",
        &script.display().to_string(),
        &server.url("/"),
    ])?;
    Ok((result.rps, result.non_2xx))
}

fn login_script(work: &Path, email: &str) -> Result<PathBuf, String> {
    lua(
        work,
        "login.lua",
        &format!(
            r#"wrk.method = "POST"
wrk.path = "/api/auth/login"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{{"email":"{email}","password":"{PASSWORD}"}}'
"#
        ),
    )
}

/// (logins/s, F3).
fn f3(server: &Server, work: &Path, cores: usize, argon2_ms: f64) -> Result<(f64, f64), String> {
    println!("\n==> F3: logins/s against the argon2 bound");
    server.sign_in("f3@example.com", false)?;
    let script = login_script(work, "f3@example.com")?;
    let result = wrk(&[
        "-t2",
        "-c8",
        "-d",
        SECONDS,
        "-s",
        &script.display().to_string(),
        &server.url("/"),
    ])?;
    if result.non_2xx > 0 {
        println!("      note: {} logins were refused", result.non_2xx);
    }
    let bound = cores as f64 * 1000.0 / argon2_ms;
    Ok((result.rps, result.rps / bound))
}

/// (idle p99 ms, p99 ms under a login flood) of /healthz, one connection.
fn f4(server: &Server, work: &Path) -> Result<(f64, f64), String> {
    println!("\n==> F4: /healthz p99, idle and during a login flood");
    let probe = ["-t1", "-c1", "-d", SECONDS, "--latency"];
    let idle = wrk(&[&probe[..], &[server.url("/healthz").as_str()]].concat())?
        .p99_ms
        .ok_or("no idle p99")?;
    server.sign_in("f4@example.com", false)?;
    let script = login_script(work, "f4@example.com")?;
    let flood_args = [
        "-t2".to_string(),
        "-c16".to_string(),
        "-d".to_string(),
        "14s".to_string(),
        "-s".to_string(),
        script.display().to_string(),
        server.url("/"),
    ];
    println!("    $ wrk {} (in the background)", flood_args.join(" "));
    let mut flood = Command::new("wrk")
        .args(&flood_args)
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    thread::sleep(Duration::from_secs(2));
    let loaded = wrk(&[&probe[..], &[server.url("/healthz").as_str()]].concat());
    let _ = flood.wait();
    Ok((idle, loaded?.p99_ms.ok_or("no p99 under load")?))
}
