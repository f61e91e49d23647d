//! `cargo xtask soak [SECONDS]`: the release server under a steady mixed load (logins,
//! refreshes, `GET /api/me`) at about half of what it can take, for ten minutes unless told
//! otherwise. Passes with no error at all and the server's memory at the end within 10 % of
//! its value after the first minute. A long check of leaks and slow failures, never a timed
//! test.

use crate::{
    bench::{lua, wrk_report, Server, PASSWORD},
    util::{output, root},
};
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

/// One connection a wrk thread: a thread's Lua state holds one device's tokens, and two
/// connections sharing them would race their refreshes.
const CONNECTIONS: usize = 4;
/// The people who sign in: each login is the next of its connection's share of them, so
/// sessions accumulate as with many people, not thousands on one account.
const PEOPLE: usize = 100;
const DEFAULT_SECONDS: u64 = 600;
/// Memory is first read after this long: start-up allocations and caches have settled.
const WARM_UP: Duration = Duration::from_secs(60);
const MEMORY_GROWTH_ALLOWED: f64 = 0.10;

pub fn run_all(args: &[String]) -> Result<(), String> {
    let seconds = match args.first() {
        Some(s) => s
            .parse::<u64>()
            .map_err(|_| format!("soak: SECONDS must be a whole number, not {s}"))?,
        None => DEFAULT_SECONDS,
    };
    if seconds < WARM_UP.as_secs() + 10 {
        return Err(format!(
            "soak: at least {} s (the first minute only warms up)",
            WARM_UP.as_secs() + 10
        ));
    }
    if output(Command::new("wrk").arg("--version")).is_none() && !Path::new("/usr/bin/wrk").exists()
    {
        crate::setup::apt_install(&["wrk"])?;
    }
    crate::util::release_build()?;
    let binary = root().join("target/release/server");
    let work = std::env::temp_dir().join(format!("xtask-soak-{}", std::process::id()));
    fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let result = soak(&binary, &work, seconds);
    let _ = fs::remove_dir_all(&work);
    result
}

fn soak(binary: &Path, work: &Path, seconds: u64) -> Result<(), String> {
    let server = Server::start(
        binary,
        work,
        &format!("sqlite://{}/soak.db", work.display()),
    )?;
    // Each run starts from tokens of its own: the capacity run rotates the first ones away.
    let people = |login: bool| -> Result<Vec<(String, String, String)>, String> {
        (0..CONNECTIONS)
            .map(|i| {
                let email = format!("soak-{i}@example.com");
                server
                    .sign_in(&email, login)
                    .map(|(access, refresh)| (email, access, refresh))
            })
            .collect()
    };

    println!("\n==> capacity: the mixed load as fast as it goes (20 s)");
    let devices = people(false)?;
    let everyone: Vec<String> = (0..PEOPLE)
        .map(|i| format!("soak-{i}@example.com"))
        .collect();
    for email in &everyone[CONNECTIONS..] {
        server.sign_in(email, false)?;
    }
    let flat_out = mixed_script(work, "capacity.lua", &devices, &everyone, 0.0)?;
    let capacity = wrk_report(&wrk_args(&server, &flat_out, "20s"))?;
    if capacity.errors() > 0 {
        return Err(format!(
            "{} errors at full speed: {capacity:?}",
            capacity.errors()
        ));
    }
    // Each connection waits as long as one of its requests took at full speed: about half
    // the rate.
    let pause_ms = 1000.0 * CONNECTIONS as f64 / capacity.rps;
    println!(
        "\n==> soak: {seconds} s at about half of {:.0} req/s (each connection pauses {pause_ms:.1} ms)",
        capacity.rps
    );
    let paced = mixed_script(work, "soak.lua", &people(true)?, &everyone, pause_ms)?;
    let (samples_tx, samples) = mpsc::channel();
    let pid = server.pid();
    let sampler = thread::spawn(move || sample_memory(pid, seconds, samples_tx));
    let soaked = wrk_report(&wrk_args(&server, &paced, &format!("{seconds}s")))?;
    let memory: Vec<(Duration, u64)> = samples.iter().collect();
    let _ = sampler.join();
    drop(server);

    let after_warm_up = memory
        .iter()
        .find(|(at, _)| *at >= WARM_UP)
        .map(|(_, kb)| *kb)
        .ok_or("no memory sample after the first minute")?;
    let at_end = memory.last().map(|(_, kb)| *kb).unwrap_or(after_warm_up);
    let growth = at_end as f64 / after_warm_up as f64 - 1.0;
    println!("\n==> results\n");
    println!("| figure | measured | goal |");
    println!("|---|---|---|");
    println!(
        "| mixed load | {:.0} req/s for {seconds} s = {:.0} % of {:.0} req/s at full speed | about 50 % |",
        soaked.rps,
        100.0 * soaked.rps / capacity.rps,
        capacity.rps
    );
    println!(
        "| errors | {} non-2xx, {} socket errors, {} timeouts | 0 |",
        soaked.non_2xx, soaked.socket_errors, soaked.timeouts
    );
    println!(
        "| server memory (RSS) | {} KiB after 1 min, {} KiB at the end: {:+.1} % | within ±10 % |",
        after_warm_up,
        at_end,
        100.0 * growth
    );
    let mut failures = Vec::new();
    if soaked.errors() > 0 {
        failures.push(format!("{} errors", soaked.errors()));
    }
    if growth.abs() > MEMORY_GROWTH_ALLOWED {
        failures.push(format!("memory moved {:+.1} %", 100.0 * growth));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("soak failed: {}", failures.join(", ")))
    }
}

fn wrk_args(server: &Server, script: &Path, duration: &str) -> Vec<String> {
    vec![
        format!("-t{CONNECTIONS}"),
        format!("-c{CONNECTIONS}"),
        "-d".into(),
        duration.into(),
        // A login hashes a password: well under a second, even on a busy machine.
        "--timeout".into(),
        "5s".into(),
        "-s".into(),
        script.display().to_string(),
        server.url("/"),
    ]
}

/// The server's resident memory every five seconds until `seconds` have passed; printed
/// once a minute, split into heap (anonymous) and file-backed pages.
fn sample_memory(pid: u32, seconds: u64, samples: mpsc::Sender<(Duration, u64)>) {
    let started = Instant::now();
    let mut printed = 0;
    while started.elapsed() < Duration::from_secs(seconds) {
        thread::sleep(Duration::from_secs(5));
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kb = |field: &str| -> Option<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        };
        let Some(rss) = kb("VmRSS:") else { continue };
        let at = started.elapsed();
        if at.as_secs() / 60 > printed {
            printed = at.as_secs() / 60;
            println!(
                "      at {:>4} s: RSS {rss} KiB (heap {} KiB, files {} KiB)",
                at.as_secs(),
                kb("RssAnon:").unwrap_or(0),
                kb("RssFile:").unwrap_or(0)
            );
        }
        if samples.send((at, rss)).is_err() {
            return;
        }
    }
}

/// Each connection is one device: mostly `GET /api/me` with its access token, every fourth
/// request a refresh (the new tokens kept), every twentieth a login as the next person of
/// its share of `everyone` (whose tokens it then keeps); and a pause of `pause_ms` before
/// each request.
fn mixed_script(
    work: &Path,
    name: &str,
    people: &[(String, String, String)],
    everyone: &[String],
    pause_ms: f64,
) -> Result<PathBuf, String> {
    let list = people
        .iter()
        .map(|(email, access, refresh)| format!(r#"{{ "{email}", "{access}", "{refresh}" }}"#))
        .collect::<Vec<_>>()
        .join(",\n  ");
    let emails = everyone
        .iter()
        .map(|e| format!("\"{e}\""))
        .collect::<Vec<_>>()
        .join(", ");
    lua(
        work,
        name,
        &format!(
            r#"local people = {{
  {list}
}}
local everyone = {{ {emails} }}
local next_index = 0
local threads = {{}}
function setup(thread)
  next_index = next_index + 1
  thread:set("index", next_index)
  table.insert(threads, thread)
end
-- Each failed answer's status and what was asked, printed at the end.
function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    local failures = thread:get("failures")
    if failures ~= "" then io.write("failures: " .. failures .. "\n") end
  end
end
function init(args)
  email = people[index][1]
  access = people[index][2]
  refresh = people[index][3]
  count = 0
  logins = 0
  asked = ""
  failures = ""
end
{delay}function request()
  count = count + 1
  if count % 20 == 0 then
    asked = "login"
    logins = logins + 1
    email = everyone[((index - 1) + logins * {CONNECTIONS}) % #everyone + 1]
    return wrk.format("POST", "/api/auth/login", {{ ["Content-Type"] = "application/json" }},
      '{{"email":"' .. email .. '","password":"{PASSWORD}"}}')
  elseif count % 4 == 0 then
    asked = "refresh"
    return wrk.format("POST", "/api/auth/refresh", {{ ["Cookie"] = "refresh_token=" .. refresh }})
  else
    asked = "me"
    return wrk.format("GET", "/api/me", {{ ["Authorization"] = "Bearer " .. access }})
  end
end
function response(status, headers, body)
  if status >= 300 and string.len(failures) < 2000 then
    failures = failures .. asked .. " " .. status .. " " .. string.sub(body, 1, 80) .. "; "
  end
  for name, value in pairs(headers) do
    if string.lower(name) == "set-cookie" then
      local t = string.match(value, "refresh_token=([^;]+)")
      if t and t ~= "" then refresh = t end
    end
  end
  local a = string.match(body, '"access_token":"([^"]+)"')
  if a then access = a end
end
"#,
            // wrk waits `delay()` ms before each request, when the script has the function.
            delay = if pause_ms > 0.0 {
                format!(
                    "function delay()\n  return {}\nend\n",
                    pause_ms.round().max(1.0)
                )
            } else {
                String::new()
            }
        ),
    )
}
