//! Installs what the project needs, only when missing. Every tool comes from a package
//! registry (crates.io, npm, Debian); nothing is downloaded from anywhere else.

use crate::util::{cargo, cargo_bin_dir, command, end2end, is_root, output, root, run, Steps};
use std::{
    fs,
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
};

/// cargo-leptos is pinned: `no_downloads` makes it use the tools on PATH without checking
/// their versions, so the whole tool set is pinned here and in end2end/package-lock.json.
const CARGO_LEPTOS: CrateTool = CrateTool {
    name: "cargo-leptos",
    binary: "cargo-leptos",
    version: "0.3.11",
    features: &["no_downloads"],
    // Its lock file pins cargo-util-schemas 0.14.2, which needs a newer rustc than 1.95.
    lock_patches: &[("cargo-util-schemas", "0.14.1")],
};

/// The browser tools for every tool step: everything `cargo leptos build` needs.
pub fn build_tools(steps: &mut Steps) -> Result<(), String> {
    steps.run("wasm32-unknown-unknown target", wasm_target)?;
    // The server's passkeys (webauthn-rs) build on OpenSSL.
    steps.run("OpenSSL headers and pkg-config (Debian)", openssl_dev)?;
    steps.run("cargo-leptos", || install_crate_tool(&CARGO_LEPTOS))?;
    steps.run("wasm-bindgen-cli (the version in Cargo.lock)", wasm_bindgen)?;
    steps.run(
        "Node packages of end2end/ (Playwright, wasm-opt from binaryen)",
        node_packages,
    )?;
    Ok(())
}

/// Everything, including what only the tests need.
pub fn all(steps: &mut Steps) -> Result<(), String> {
    build_tools(steps)?;
    steps.run("Chromium (Debian)", chromium)?;
    steps.run("PostgreSQL server (Debian)", postgres)?;
    // The key file test checks that OpenSSL reads the files the server writes.
    steps.run("OpenSSL command line (Debian)", openssl)?;
    // ... and that Python's `cryptography` reads them too.
    steps.run("Python's cryptography (Debian)", python_cryptography)?;
    // The load balancer in front of two instances for a Playwright run.
    steps.run("nginx (Debian)", nginx)?;
    schemathesis(steps)?;
    Ok(())
}

/// The API tests' tool alone, for `cargo xtask schemathesis`.
pub fn schemathesis(steps: &mut Steps) -> Result<(), String> {
    steps.run(
        &format!("Schemathesis {SCHEMATHESIS} (PyPI, in a venv under target/)"),
        install_schemathesis,
    )
}

/// Schemathesis, pinned like the other tools: the API tests' generator of requests from the
/// OpenAPI document.
pub const SCHEMATHESIS: &str = "4.32.5";

/// Its own Python venv inside the repository, so nothing is installed system-wide.
pub fn schemathesis_venv() -> PathBuf {
    root()
        .join("target")
        .join("tools")
        .join("schemathesis-venv")
}

pub fn schemathesis_bin() -> PathBuf {
    schemathesis_venv().join("bin").join("schemathesis")
}

fn install_schemathesis() -> Result<(), String> {
    let installed = output(command(schemathesis_bin()).arg("--version")).unwrap_or_default();
    let requirements = root().join("xtask/schemathesis-requirements.txt");
    if installed.split_whitespace().any(|w| w == SCHEMATHESIS) && pinned_as_listed(&requirements) {
        println!("    already installed: {installed}");
        return Ok(());
    }
    if !installed.is_empty() {
        println!("    found {installed}, want {SCHEMATHESIS}");
    }
    // A venv of another version, or one whose Python has gone, is made anew.
    let venv = schemathesis_venv();
    let _ = fs::remove_dir_all(&venv);
    run(command(venv_python()?).args(["-m", "venv"]).arg(&venv))?;
    run(command(venv.join("bin").join("python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            // Every package pinned, not only schemathesis: its dependencies decide what it
            // generates and checks.
            "--requirement",
        ])
        .arg(&requirements))?;
    let version = output(command(schemathesis_bin()).arg("--version"))
        .ok_or("schemathesis does not run after its install")?;
    println!("    installed: {version}");
    Ok(())
}

/// Whether the venv holds exactly the packages `requirements` pins (a venv made before the
/// pins, or from other ones, is made anew).
fn pinned_as_listed(requirements: &Path) -> bool {
    let wanted: Vec<String> = fs::read_to_string(requirements)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.trim().to_lowercase())
        .collect();
    let pip = schemathesis_venv().join("bin").join("pip");
    let frozen =
        output(command(pip).args(["freeze", "--disable-pip-version-check"])).unwrap_or_default();
    let mut have: Vec<String> = frozen.lines().map(|l| l.trim().to_lowercase()).collect();
    let mut wanted = wanted;
    have.sort();
    wanted.sort();
    have == wanted
}

/// A Python that can make venvs: `python3` on PATH when it can, else Debian's. Debian's
/// python3 lacks `ensurepip`, which `python3 -m venv` needs, until python3-venv is installed.
fn venv_python() -> Result<PathBuf, String> {
    let can_make_venvs =
        |python: &Path| output(command(python).args(["-c", "import venv, ensurepip"])).is_some();
    let on_path = PathBuf::from("python3");
    if can_make_venvs(&on_path) {
        return Ok(on_path);
    }
    let debian = PathBuf::from("/usr/bin/python3");
    if !can_make_venvs(&debian) {
        apt_install(&["python3-venv"])?;
    }
    Ok(debian)
}

pub const NGINX: &str = "/usr/sbin/nginx";

/// Debian's nginx, kept from starting the system's own server on port 80 when it installs
/// (a `policy-rc.d` that forbids starting services, for the install only): the tests run
/// their own, on loopback, with a configuration of their own.
fn nginx() -> Result<(), String> {
    if Path::new(NGINX).exists() {
        println!("    already installed: {NGINX}");
        return Ok(());
    }
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let ours = !policy.exists();
    if ours && is_root() {
        fs::write(
            policy,
            "#!/bin/sh\n# jwt-auth's xtask: no service starts while it installs\nexit 101\n",
        )
        .map_err(|e| format!("{}: {e}", policy.display()))?;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(policy, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("{}: {e}", policy.display()))?;
    }
    let installed = apt_install(&["nginx"]);
    if ours && is_root() {
        let _ = fs::remove_file(policy);
    }
    installed
}

fn python_cryptography() -> Result<(), String> {
    let reads_keys =
        || output(command("/usr/bin/python3").args(["-c", "import cryptography"])).is_some();
    if reads_keys() {
        println!("    already installed: python3-cryptography");
        return Ok(());
    }
    apt_install(&["python3-cryptography"])
}

fn openssl() -> Result<(), String> {
    if Path::new("/usr/bin/openssl").exists() {
        println!("    already installed: /usr/bin/openssl");
        return Ok(());
    }
    apt_install(&["openssl"])
}

fn openssl_dev() -> Result<(), String> {
    let found = command("pkg-config")
        .args(["--exists", "openssl"])
        .status()
        .is_ok_and(|s| s.success());
    if found {
        println!("    already installed: libssl-dev (pkg-config finds openssl)");
        return Ok(());
    }
    apt_install(&["libssl-dev", "pkg-config"])
}

fn wasm_target() -> Result<(), String> {
    let installed =
        output(command("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if installed
        .lines()
        .any(|l| l.trim() == "wasm32-unknown-unknown")
    {
        println!("    already installed");
        return Ok(());
    }
    run(command("rustup").args(["target", "add", "wasm32-unknown-unknown"]))
}

fn wasm_bindgen() -> Result<(), String> {
    let version = locked_version("wasm-bindgen")?;
    install_crate_tool(&CrateTool {
        name: "wasm-bindgen-cli",
        binary: "wasm-bindgen",
        version: &version,
        features: &[],
        // Its lock file pins webpki-roots 1.0.11, which the registry no longer serves.
        lock_patches: &[("webpki-roots", "1.0.10")],
    })
}

struct CrateTool<'a> {
    name: &'a str,
    binary: &'a str,
    version: &'a str,
    features: &'a [&'a str],
    lock_patches: &'a [(&'a str, &'a str)],
}

/// `cargo install --locked` from the crate's own lock file, after the small lock patches
/// that make it build here. Built in a temp folder that is removed afterwards.
fn install_crate_tool(tool: &CrateTool) -> Result<(), String> {
    let binary = cargo_bin_dir().join(tool.binary);
    let installed = output(command(&binary).arg("--version")).unwrap_or_default();
    if installed
        .split_whitespace()
        .any(|word| word == tool.version)
    {
        println!("    already installed: {installed}");
        return Ok(());
    }
    if !installed.is_empty() {
        println!("    found {installed}, want {}", tool.version);
    }
    let work = std::env::temp_dir().join(format!(
        "xtask-{}-{}-{}",
        tool.name,
        tool.version,
        std::process::id()
    ));
    let result = build_and_install(tool, &work);
    let _ = fs::remove_dir_all(&work);
    result
}

fn build_and_install(tool: &CrateTool, work: &Path) -> Result<(), String> {
    fs::create_dir_all(work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let archive = work.join(format!("{}-{}.crate", tool.name, tool.version));
    run(command("curl")
        .args([
            "--silent",
            "--show-error",
            "--fail",
            "--location",
            "--retry",
            "3",
            "--output",
        ])
        .arg(&archive)
        .arg(format!(
            "https://static.crates.io/crates/{0}/{0}-{1}.crate",
            tool.name, tool.version
        )))?;
    run(command("tar").arg("xzf").arg(&archive).arg("-C").arg(work))?;
    let source = work.join(format!("{}-{}", tool.name, tool.version));
    for (package, precise) in tool.lock_patches {
        run(cargo().current_dir(&source).args([
            "update",
            "--package",
            package,
            "--precise",
            precise,
        ]))?;
    }
    let mut install = cargo();
    install
        .current_dir(&source)
        .args(["install", "--locked", "--force", "--path", "."])
        .arg("--target-dir")
        .arg(work.join("build"));
    if !tool.features.is_empty() {
        install.args(["--features", &tool.features.join(",")]);
    }
    run(&mut install)
}

/// The version of `package` that Cargo.lock resolves.
fn locked_version(package: &str) -> Result<String, String> {
    let lock = fs::read_to_string(root().join("Cargo.lock"))
        .map_err(|e| format!("cannot read Cargo.lock: {e}"))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{package}\"") {
            if let Some(version) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = \""))
                .and_then(|v| v.strip_suffix('"'))
            {
                return Ok(version.to_string());
            }
        }
    }
    Err(format!("{package} is not in Cargo.lock"))
}

fn node_packages() -> Result<(), String> {
    let dir = end2end();
    let stamp = dir.join("node_modules").join(".package-lock.json");
    let fresh = match (modified(&stamp), modified(&dir.join("package-lock.json"))) {
        (Some(installed), Some(wanted)) => installed >= wanted,
        _ => false,
    };
    if fresh {
        println!("    already installed (node_modules matches package-lock.json)");
    } else {
        // Playwright drives Debian's Chromium; it must never download a browser of its own.
        run(command("npm")
            .current_dir(&dir)
            .args(["ci", "--no-audit", "--no-fund"])
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1"))?;
    }
    let wasm_opt = dir.join("node_modules").join(".bin").join("wasm-opt");
    let version = output(command(&wasm_opt).arg("--version"))
        .ok_or_else(|| format!("{} does not run", wasm_opt.display()))?;
    println!("    wasm-opt: {version}");
    link_wasm_opt(&wasm_opt)
}

/// cargo-leptos looks for wasm-opt on PATH (it downloads nothing here): a link beside it in
/// cargo's bin folder makes a bare `cargo leptos build --release` find npm's, never
/// Debian's older one (which breaks hydration).
fn link_wasm_opt(wasm_opt: &Path) -> Result<(), String> {
    let target = fs::canonicalize(wasm_opt).map_err(|e| format!("{}: {e}", wasm_opt.display()))?;
    let link = crate::util::cargo_bin_dir().join("wasm-opt");
    match fs::read_link(&link) {
        Ok(existing) if existing == target => {
            println!(
                "    already linked: {} -> {}",
                link.display(),
                target.display()
            );
            return Ok(());
        }
        // Ours from another checkout, or one whose target is gone: replaced.
        Ok(existing)
            if !existing.exists() || existing.ends_with("node_modules/binaryen/bin/wasm-opt") =>
        {
            fs::remove_file(&link).map_err(|e| format!("{}: {e}", link.display()))?
        }
        Err(_) if !link.exists() => {}
        // Someone's own wasm-opt (a file, or a link elsewhere): theirs to keep. The xtask's
        // builds put npm's first on PATH anyway.
        _ => {
            println!(
                "    warning: {} is not npm's wasm-opt; a bare `cargo leptos build --release` uses it",
                link.display()
            );
            return Ok(());
        }
    }
    std::os::unix::fs::symlink(&target, &link)
        .map_err(|e| format!("cannot link {}: {e}", link.display()))?;
    println!("    linked {} -> {}", link.display(), target.display());
    Ok(())
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn chromium() -> Result<(), String> {
    if Path::new("/usr/bin/chromium").exists() {
        println!("    already installed: /usr/bin/chromium");
        return Ok(());
    }
    apt_install(&["chromium"])
}

pub fn postgres() -> Result<(), String> {
    if let Some(bin) = postgres_bin_dir() {
        println!("    already installed: {}", bin.display());
        return Ok(());
    }
    apt_install(&["postgresql"])
}

/// The folder of Debian's PostgreSQL server binaries (`initdb`, `pg_ctl`), newest first.
pub fn postgres_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop()
}

static APT_UPDATED: AtomicBool = AtomicBool::new(false);

pub fn apt_install(packages: &[&str]) -> Result<(), String> {
    if !is_root() {
        return Err(format!(
            "missing Debian packages; install them with: sudo apt-get install -y {}",
            packages.join(" ")
        ));
    }
    if !APT_UPDATED.swap(true, Ordering::SeqCst) {
        run(command("apt-get").args(["update", "-qq"]))?;
    }
    run(command("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}
