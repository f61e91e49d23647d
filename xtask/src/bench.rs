//! `cargo xtask bench`: the release server under load from wrk (Debian), every ratio of
//! the table measured in one run on this machine. A benchmark, never a test: it prints
//! figures and fails only when it cannot measure.

use crate::{
    postgres,
    setup::apt_install,
    util::{command, free_port, free_port_below_ephemeral, output, root},
};
use std::{
    fs,
    io::{BufRead, BufReader, Write},
    net::TcpStream,
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
    crate::util::release_build()?;
    let binary = root().join("target/release/server");
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
        let (logins, argon2_ms, f3) = f3(&sqlite, &binary, &work, cores)?;
        let f4 = f4(&sqlite, &work)?;
        drop(sqlite);
        let ceiling_sqlite = ceiling(
            &binary,
            &work,
            &format!("sqlite://{}/ceiling.db", work.display()),
        )?;

        let pg = postgres::Throwaway::start()?;
        let pg_server = Server::start(&binary, &work, &pg.url())?;
        let f2_pg = f2(&pg_server, &work)?;
        let ceiling_pg = ceiling(&binary, &work, &pg.url())?;
        // F5: one instance, then two on the same database, the load split between them.
        println!("\n==> F5: PostgreSQL, one instance and two");
        let one_me = me_rate(&[&pg_server], 32)?;
        let one_refresh = refresh_rate(&[&pg_server], &work, 8)?;
        let second = Server::start(&binary, &work, &pg.url())?;
        let two_me = me_rate(&[&pg_server, &second], 32)?;
        let two_refresh = refresh_rate(&[&pg_server, &second], &work, 8)?;
        drop(second);
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
        print_refresh(
            (f2_sqlite.0, f2_sqlite.1, ceiling_sqlite),
            (f2_pg.0, f2_pg.1, ceiling_pg),
        );
        for (what, one, two) in [
            ("GET /api/me req/s (32 connections)", one_me, two_me),
            ("refresh rotations/s (8 chains)", one_refresh, two_refresh),
        ] {
            println!(
                "| F5 PostgreSQL {what}: two instances ÷ one | {:.0} ÷ {:.0} = **{:.2}**; failed (non-2xx, socket errors, timeouts) {} and {} | zero failed |",
                two.0,
                one.0,
                two.0 / one.0,
                two.1,
                one.1
            );
        }
        println!(
            "| F3 = logins/s ÷ (cores × 1000 / argon2 ms) | {logins:.1} ÷ {:.1} = **{f3:.2}** | ≥ 0.90 |",
            cores as f64 * 1000.0 / argon2_ms
        );
        println!(
            "| F4 = /healthz p99 under a login flood ÷ idle p99 (paced probe) | {:.2} ms ÷ {:.2} ms = **{:.2}** | ≤ 2 |",
            f4.1, f4.0, f4.1 / f4.0
        );
        let refused = [one_me, two_me, one_refresh, two_refresh, f2_sqlite, f2_pg]
            .iter()
            .map(|(_, non_2xx)| non_2xx)
            .sum::<u64>();
        if refused > 0 {
            return Err(format!("{refused} requests failed (see the table)"));
        }
        Ok(())
    })();
    let _ = fs::remove_dir_all(&work);
    result
}

/// The release server on a private port, stopped on drop.
pub(crate) struct Server {
    child: Child,
    port: u16,
    base: String,
}

impl Server {
    pub(crate) fn start(binary: &Path, work: &Path, database_url: &str) -> Result<Server, String> {
        let port = free_port_below_ephemeral()?;
        let child = command(binary)
            .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", database_url)
            // One public address for every instance, as behind a load balancer: it is
            // their tokens' issuer and audience.
            .env("PUBLIC_URL", "http://localhost")
            .env("AUTH_KEY_FILE", work.join("jwt.pem"))
            .env("AUTH_SECRET_FILE", work.join("secret.key"))
            .env("RATE_LIMIT_ENABLED", "false")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the server: {e}"))?;
        let server = Server {
            child,
            port,
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

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Registers a person (or logs in when `login`) and returns (access token, refresh token).
    pub(crate) fn sign_in(&self, email: &str, login: bool) -> Result<(String, String), String> {
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

pub(crate) const PASSWORD: &str = "benchmark password";

fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(text[from..from + len].to_string())
}

/// What wrk printed: requests/s, the count of non-2xx answers and of failed requests.
#[derive(Debug)]
pub(crate) struct Wrk {
    pub(crate) rps: f64,
    pub(crate) non_2xx: u64,
    /// Connect, read and write errors.
    pub(crate) socket_errors: u64,
    pub(crate) timeouts: u64,
}

impl Wrk {
    pub(crate) fn errors(&self) -> u64 {
        self.non_2xx + self.socket_errors + self.timeouts
    }
}

/// `wrk` with owned arguments.
pub(crate) fn wrk_report(args: &[String]) -> Result<Wrk, String> {
    wrk(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The counts of `Socket errors: connect 0, read 0, write 0, timeout 0`: (errors, timeouts).
fn socket_errors(text: &str) -> (u64, u64) {
    let Some(line) = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
    else {
        return (0, 0);
    };
    let mut counts = (0, 0);
    for part in line.split(',') {
        let mut words = part.split_whitespace();
        if let (Some(kind), Some(n)) = (
            words.next(),
            words.next().and_then(|n| n.parse::<u64>().ok()),
        ) {
            if kind == "timeout" {
                counts.1 += n;
            } else {
                counts.0 += n;
            }
        }
    }
    counts
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
    // What a script's `done` reports about failed answers.
    for line in text.lines().filter(|l| l.starts_with("failures:")) {
        println!("      {line}");
    }
    let (socket_errors, timeouts) = socket_errors(&text);
    println!("      {rps:.0} req/s, {non_2xx} non-2xx, {socket_errors} socket errors, {timeouts} timeouts");
    Ok(Wrk {
        rps,
        non_2xx,
        socket_errors,
        timeouts,
    })
}

pub(crate) fn lua(work: &Path, name: &str, script: &str) -> Result<PathBuf, String> {
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

/// The database's own rotations/s (`server bench-rotation`: the storage code of a rotation in
/// a tight loop, in-process, on the same settings): the ceiling F2 is measured against.
/// Run on a database of its own on SQLite (a fresh file, the same settings), on the
/// PostgreSQL database of the F2 run with its server idle. wrk shares the two cores with
/// the server during F2; nothing does with the ceiling.
fn ceiling(binary: &Path, work: &Path, database_url: &str) -> Result<f64, String> {
    println!("\n==> the ceiling: a rotation's own SQL in a tight loop, in-process");
    let out = command(binary)
        .arg("bench-rotation")
        .env("DATABASE_URL", database_url)
        .env("AUTH_KEY_FILE", work.join("jwt.pem"))
        .env("AUTH_SECRET_FILE", work.join("secret.key"))
        .env("RUST_LOG", "warn")
        .output()
        .map_err(|e| format!("cannot run server bench-rotation: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "server bench-rotation failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // Each way of writing it was measured (grouped, alone): shown, the better one taken.
    print!("{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .map_err(|_| format!("server bench-rotation printed {text:?}"))
}

/// F2 and its ceiling on SQLite (one server; the ceiling on a fresh file with the same
/// settings) and on PostgreSQL: `cargo xtask bench f2`, the refresh figures alone.
pub fn refresh_only() -> Result<(), String> {
    crate::util::release_build()?;
    let binary = root().join("target/release/server");
    let work = std::env::temp_dir().join(format!("xtask-bench-f2-{}", std::process::id()));
    fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let result = (|| {
        let (sqlite, pg) = refresh_against_ceiling(&binary, &work)?;
        println!("\n==> results\n");
        print_refresh(sqlite, pg);
        Ok(())
    })();
    let _ = fs::remove_dir_all(&work);
    result
}

/// ((F2, non-2xx, ceiling) on SQLite, the same on PostgreSQL), each measured in this run.
#[allow(clippy::type_complexity)]
fn refresh_against_ceiling(
    binary: &Path,
    work: &Path,
) -> Result<((f64, u64, f64), (f64, u64, f64)), String> {
    let sqlite = Server::start(binary, work, &format!("sqlite://{}/f2.db", work.display()))?;
    let f2_sqlite = f2(&sqlite, work)?;
    drop(sqlite);
    let ceiling_sqlite = ceiling(
        binary,
        work,
        &format!("sqlite://{}/ceiling.db", work.display()),
    )?;
    let pg = postgres::Throwaway::start()?;
    let server = Server::start(binary, work, &pg.url())?;
    let f2_pg = f2(&server, work)?;
    drop(server);
    let ceiling_pg = ceiling(binary, work, &pg.url())?;
    Ok((
        (f2_sqlite.0, f2_sqlite.1, ceiling_sqlite),
        (f2_pg.0, f2_pg.1, ceiling_pg),
    ))
}

fn print_refresh(sqlite: (f64, u64, f64), pg: (f64, u64, f64)) {
    for (name, (f2, non_2xx, ceiling)) in [("SQLite", sqlite), ("PostgreSQL", pg)] {
        println!(
            "| F2 refresh rotations/s, {name} (8 chains) ÷ the database's own (a rotation's SQL in-process) | {f2:.0} ÷ {ceiling:.0} = **{:.2}**; {non_2xx} failed (non-2xx, socket errors, timeouts) | ≥ 0.50 on SQLite; zero failed |",
            f2 / ceiling
        );
    }
}

/// (rotations/s, failed requests: non-2xx, socket errors, timeouts): one token chain per
/// connection.
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
    let script = refresh_script(work, "refresh.lua", &tokens)?;
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
    Ok((result.rps, result.errors()))
}

/// The wrk script of refresh chains: each connection presents its token and keeps the one
/// each answer's cookie sets.
fn refresh_script(work: &Path, name: &str, tokens: &[String]) -> Result<PathBuf, String> {
    let list = tokens
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ");
    lua(
        work,
        name,
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
    )
}

/// Runs one wrk per argument list at once; their (summed req/s, summed failed requests:
/// non-2xx, socket errors and timeouts).
fn wrk_at_once(runs: Vec<Vec<String>>) -> Result<(f64, u64), String> {
    let handles: Vec<_> = runs
        .into_iter()
        .map(|args| {
            thread::spawn(move || wrk(&args.iter().map(String::as_str).collect::<Vec<_>>()))
        })
        .collect();
    let mut total = (0.0, 0);
    for handle in handles {
        let result = handle.join().map_err(|_| "a wrk thread panicked")??;
        total.0 += result.rps;
        total.1 += result.errors();
    }
    Ok(total)
}

/// `GET /api/me` req/s over `servers` together, `connections` split between them; and the
/// failed requests (non-2xx, socket errors, timeouts). One person's token, valid on every instance (they share the keys).
fn me_rate(servers: &[&Server], connections: usize) -> Result<(f64, u64), String> {
    let email = format!("f5-me-{}@example.com", free_port()?);
    let (access, _) = servers[0].sign_in(&email, false)?;
    let auth = format!("Authorization: Bearer {access}");
    let each = connections / servers.len();
    // Two wrk threads in all, as F1, so that the load generator's share of the cores is
    // the same for one instance and for two.
    let threads = (2 / servers.len()).max(1);
    wrk_at_once(
        servers
            .iter()
            .map(|server| {
                vec![
                    format!("-t{threads}"),
                    format!("-c{each}"),
                    "-d".into(),
                    SECONDS.into(),
                    "-H".into(),
                    auth.clone(),
                    server.url("/api/me"),
                ]
            })
            .collect(),
    )
}

/// Refresh rotations/s over `servers` together, `chains` token chains (one a connection)
/// split between them; and the failed requests (non-2xx, socket errors, timeouts).
fn refresh_rate(servers: &[&Server], work: &Path, chains: usize) -> Result<(f64, u64), String> {
    let each = chains / servers.len();
    let run_id = free_port()?;
    let mut runs = Vec::new();
    for (n, server) in servers.iter().enumerate() {
        let mut tokens = Vec::new();
        for i in 0..each {
            tokens.push(
                servers[0]
                    .sign_in(&format!("f5-{run_id}-{n}-{i}@example.com"), false)?
                    .1,
            );
        }
        let script = refresh_script(work, &format!("refresh-{n}.lua"), &tokens)?;
        runs.push(vec![
            format!("-t{each}"),
            format!("-c{each}"),
            "-d".into(),
            SECONDS.into(),
            "-s".into(),
            script.display().to_string(),
            server.url("/"),
        ]);
    }
    wrk_at_once(runs)
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

/// Median ms of one argon2id hash, from the release binary (one thread, nothing else running).
fn argon2_ms(binary: &Path) -> Result<f64, String> {
    output(Command::new(binary).arg("bench-argon2"))
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| "cannot measure one argon2 hash".to_string())
}

/// (logins/s, argon2 ms, F3). The hash is timed just before and just after the flood and
/// the mean taken: this machine's speed drifts by several per cent within a minute.
fn f3(
    server: &Server,
    binary: &Path,
    work: &Path,
    cores: usize,
) -> Result<(f64, f64, f64), String> {
    println!("\n==> F3: logins/s against the argon2 bound");
    server.sign_in("f3@example.com", false)?;
    let before = argon2_ms(binary)?;
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
    let after = argon2_ms(binary)?;
    let argon2_ms = (before + after) / 2.0;
    println!("      one argon2id hash: {before:.2} ms before, {after:.2} ms after");
    let bound = cores as f64 * 1000.0 / argon2_ms;
    Ok((result.rps, argon2_ms, result.rps / bound))
}

/// (idle p99 ms, p99 ms under a login flood) of /healthz, from the paced probe.
fn f4(server: &Server, work: &Path) -> Result<(f64, f64), String> {
    println!("\n==> F4: /healthz p99, idle and during a login flood");
    let idle = paced_probe(server)?;
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
    let loaded = paced_probe(server);
    let _ = flood.wait();
    Ok((idle, loaded?))
}

const PROBE_FOR: Duration = Duration::from_secs(10);
const PROBE_EVERY: Duration = Duration::from_millis(2);

/// p99 in ms of `GET /healthz` sent every 2 ms for 10 s on one keep-alive connection, as
/// a health checker or a person clicking would send them. wrk's closed loop is no probe
/// here: it keeps a core busy by itself, so the scheduler makes it wait its fair turn
/// behind the hashing threads, and its p99 measures that share rather than the server.
fn paced_probe(server: &Server) -> Result<f64, String> {
    let io = |e: std::io::Error| format!("probe: {e}");
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).map_err(io)?;
    stream.set_nodelay(true).map_err(io)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(io)?;
    let mut reader = BufReader::new(stream.try_clone().map_err(io)?);
    let request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    let started = Instant::now();
    let mut due = started;
    let mut latencies = Vec::new();
    while started.elapsed() < PROBE_FOR {
        // On time: the clock starts at the send. Behind (a slow answer kept the probe
        // past the time this request was due): it starts when the request was due, so a
        // stall counts in every request it delays, not once.
        let start = match due.checked_duration_since(Instant::now()) {
            Some(wait) => {
                thread::sleep(wait);
                Instant::now()
            }
            None => due,
        };
        stream.write_all(request).map_err(io)?;
        read_ok_response(&mut reader)?;
        latencies.push(start.elapsed().as_secs_f64() * 1000.0);
        due += PROBE_EVERY;
    }
    latencies.sort_by(f64::total_cmp);
    // Nearest rank.
    let at = |q: f64| {
        let rank = (latencies.len() as f64 * q).ceil() as usize;
        latencies[rank.clamp(1, latencies.len()) - 1]
    };
    println!(
        "    paced probe: {} requests, p50 {:.3} ms, p99 {:.3} ms",
        latencies.len(),
        at(0.50),
        at(0.99)
    );
    Ok(at(0.99))
}

/// Reads one HTTP/1.1 response with a Content-Length body; anything but 200 is an error.
fn read_ok_response(reader: &mut impl BufRead) -> Result<(), String> {
    let mut line = String::new();
    let mut length = 0;
    let mut first = true;
    loop {
        line.clear();
        if reader
            .read_line(&mut line)
            .map_err(|e| format!("probe: {e}"))?
            == 0
        {
            return Err("probe: the server closed the connection".into());
        }
        if first {
            if !line.starts_with("HTTP/1.1 200 ") {
                return Err(format!("probe: /healthz answered {}", line.trim()));
            }
            first = false;
        } else if line == "\r\n" {
            break;
        } else if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value
                    .trim()
                    .parse()
                    .map_err(|_| "probe: bad Content-Length")?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err("probe: a chunked answer; the probe reads Content-Length only".into());
            }
        }
    }
    let mut body = vec![0; length];
    std::io::Read::read_exact(reader, &mut body).map_err(|e| format!("probe: {e}"))
}
