use std::{
    ffi::OsStr,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// The workspace root: the parent of xtask's own folder (an absolute path, so it has one;
/// `..` would name the same folder, less readably).
pub fn root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask
        .parent()
        .map_or_else(|| xtask.join(".."), Path::to_path_buf)
}

pub fn end2end() -> PathBuf {
    root().join("end2end")
}

/// Where `cargo install` puts binaries, kept between runs.
pub fn cargo_bin_dir() -> PathBuf {
    match std::env::var_os("CARGO_HOME") {
        Some(home) => PathBuf::from(home).join("bin"),
        None => home_dir().join(".cargo").join("bin"),
    }
}

fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

/// PATH for every child: cargo's bin folder (cargo-leptos, wasm-bindgen) and end2end's
/// Node tools (wasm-opt from npm's binaryen, Playwright) come first.
fn path_env() -> std::ffi::OsString {
    let mut dirs = vec![cargo_bin_dir(), end2end().join("node_modules").join(".bin")];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    // A folder whose name holds the separator (`:`) cannot be on PATH: leave it out, and say so.
    dirs.retain(|dir| {
        let fits = std::env::join_paths([dir]).is_ok();
        if !fits {
            eprintln!("xtask: {} cannot be put on PATH", dir.display());
        }
        fits
    });
    std::env::join_paths(dirs).unwrap_or_default()
}

pub fn command(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(root()).env("PATH", path_env());
    cmd
}

/// The release build as it is deployed: the WASM split where the pages say (`on_demand_part!`,
/// `--split`, and app's `split` feature that turns them on), file names carrying their content's hash (`LEPTOS_HASH_FILES`, release
/// only: `cargo leptos watch` does not hash again on rebuilds), and brotli and gzip copies
/// of every file beside it (`--precompress`). A bare `cargo leptos build --release` makes a
/// working site too, only unsplit, unhashed and uncompressed.
pub fn release_build() -> Result<(), String> {
    run(&mut release_command("build"))
}

/// `cargo leptos <command> --release`, split, hashed and precompressed.
pub fn release_command(command: &str) -> Command {
    let mut cmd = cargo();
    cmd.args(["leptos", command, "--release", "--split", "--precompress"])
        .args(["--lib-features", "split"])
        .env("LEPTOS_HASH_FILES", "true");
    cmd
}

pub fn cargo() -> Command {
    command(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

pub fn npx<const N: usize>(args: [&str; N]) -> Command {
    let mut cmd = command("npx");
    cmd.current_dir(end2end()).args(args);
    cmd
}

fn describe(cmd: &Command) -> String {
    let mut line = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Runs a command with inherited output; fails on a non-zero exit.
pub fn run(cmd: &mut Command) -> Result<(), String> {
    let line = describe(cmd);
    println!("    $ {line}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start `{line}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{line}` failed ({status})"))
    }
}

/// Runs a command quietly and returns its stdout, or None when it cannot run or fails.
pub fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A port that was free a moment ago on loopback.
pub fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// A port that was free a moment ago on loopback, below the kernel's ephemeral range
/// (32768 and up): wrk's many client connections take ports from that range, and a
/// server there may find its port taken, or collide with them.
pub fn free_port_below_ephemeral() -> Result<u16, String> {
    let start = 20_000 + (std::process::id() % 10_000) as u16;
    (0..2_000u16)
        .map(|i| 20_000 + (start - 20_000 + i * 7) % 12_000)
        .find(|port| TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .ok_or_else(|| "no free port below 32768".to_string())
}

/// `N` distinct free ports (each listener is held until all are chosen).
pub fn free_ports<const N: usize>() -> Result<[u16; N], String> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ports = [0; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr().map_err(|e| e.to_string())?.port();
    }
    Ok(ports)
}

pub fn is_root() -> bool {
    output(Command::new("id").arg("-u")).as_deref() == Some("0")
}

/// Times each step and prints a summary at the end.
#[derive(Default)]
pub struct Steps {
    done: Vec<(String, Duration, bool)>,
}

impl Steps {
    pub fn run(
        &mut self,
        name: &str,
        f: impl FnOnce() -> Result<(), String>,
    ) -> Result<(), String> {
        println!("\n==> {name}");
        let started = Instant::now();
        let result = f();
        let took = started.elapsed();
        println!(
            "    {} {name} in {}",
            if result.is_ok() { "done:" } else { "FAILED:" },
            fmt(took)
        );
        self.done.push((name.to_string(), took, result.is_ok()));
        result
    }

    pub fn print_summary(&self, total: Duration) {
        if self.done.is_empty() {
            return;
        }
        println!("\n==> summary");
        for (name, took, ok) in &self.done {
            println!(
                "    {:>9}  {}  {name}",
                fmt(*took),
                if *ok { "ok  " } else { "FAIL" }
            );
        }
        println!("    {:>9}  total", fmt(total));
    }
}

fn fmt(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 60.0 {
        format!("{}m{:04.1}s", (secs / 60.0).floor() as u64, secs % 60.0)
    } else {
        format!("{secs:.1}s")
    }
}
