//! `cargo xtask watch-timing`: how long `cargo leptos watch` takes to serve the first page,
//! then to show a one-line change in `app`, three times. Figures, not a test: it prints
//! them and fails only when a step never finishes. The site is built in a folder of its
//! own (`LEPTOS_SITE_ROOT`), so the release build's `target/site` is left as it was; the
//! debug server binary is rebuilt. Ctrl-C leaves the changed line and the watch behind:
//! let it finish.

use crate::util::{cargo, free_ports, output, root};
use std::{
    fs,
    os::unix::process::CommandExt,
    path::Path,
    process::{Child, Stdio},
    thread,
    time::{Duration, Instant, SystemTime},
};

/// The line changed: the home page's heading.
const FILE: &str = "app/src/pages/home.rs";
const HEADING: &str = "Browser sign-in with JWTs, done right";
const CHANGES: usize = 3;
const GIVE_UP: Duration = Duration::from_secs(900);

pub fn run_all() -> Result<(), String> {
    let path = root().join(FILE);
    let original = fs::read_to_string(&path).map_err(|e| format!("{FILE}: {e}"))?;
    if !original.contains(HEADING) {
        return Err(format!("{FILE} no longer holds the heading \"{HEADING}\""));
    }
    let work = std::env::temp_dir().join(format!("xtask-watch-{}", std::process::id()));
    fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let site = work.join("site");
    let [port, reload_port] = free_ports::<2>()?;
    let url = format!("http://127.0.0.1:{port}/");
    let log = fs::File::create(work.join("watch.log")).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut watch = Watch(
        cargo()
            .args(["leptos", "watch"])
            .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
            .env("LEPTOS_RELOAD_PORT", reload_port.to_string())
            .env("LEPTOS_SITE_ROOT", &site)
            .env(
                "DATABASE_URL",
                format!("sqlite://{}/watch.db", work.display()),
            )
            .env("AUTH_KEY_FILE", work.join("jwt.pem"))
            .env("AUTH_SECRET_FILE", work.join("secret.key"))
            .stdout(Stdio::null())
            .stderr(log)
            // Its own process group: stopping it stops the server it started too.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start cargo leptos watch: {e}"))?,
    );
    let result = (|| {
        wait_for(&mut watch, &url, HEADING, started)?;
        println!(
            "    first page served after {:.1} s",
            started.elapsed().as_secs_f64()
        );
        // Put back whatever happens from here on, a panic included.
        let _restore = Restore {
            path: &path,
            original: &original,
        };
        let mut times = Vec::new();
        for i in 1..=CHANGES {
            // Builds settle before the next change.
            thread::sleep(Duration::from_secs(5));
            let heading = format!("{HEADING} ({i})");
            let changed_at = SystemTime::now();
            let started = Instant::now();
            fs::write(&path, original.replace(HEADING, &heading)).map_err(|e| e.to_string())?;
            wait_for(&mut watch, &url, &heading, started)?;
            let served = started.elapsed();
            wait_for_new_wasm(&mut watch, &site.join("pkg"), changed_at, started)?;
            let both = started.elapsed();
            println!(
                "    change {i}: served by the server after {:.1} s, the new WASM written after {:.1} s",
                served.as_secs_f64(),
                both.as_secs_f64()
            );
            times.push(both.as_secs_f64());
        }
        println!("    a one-line change until the page shows it: {times:.1?} s");
        Ok(())
    })();
    if result.is_err() {
        println!(
            "    the watch's output: {}",
            work.join("watch.log").display()
        );
    } else {
        drop(watch);
        let _ = fs::remove_dir_all(&work);
    }
    result
}

/// Puts the changed file back as it was.
struct Restore<'a> {
    path: &'a Path,
    original: &'a str,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let _ = fs::write(self.path, self.original);
    }
}

struct Watch(Child);

impl Drop for Watch {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = std::process::Command::new("kill")
            .args(["-TERM", "--", &group])
            .status();
        let _ = self.0.wait();
    }
}

impl Watch {
    fn check_running(&mut self) -> Result<(), String> {
        match self.0.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("cargo leptos watch stopped ({status})")),
            Err(e) => Err(e.to_string()),
        }
    }
}

fn wait_for(watch: &mut Watch, url: &str, text: &str, since: Instant) -> Result<(), String> {
    while since.elapsed() < GIVE_UP {
        watch.check_running()?;
        if output(std::process::Command::new("curl").args(["-sf", "--max-time", "2", url]))
            .is_some_and(|page| page.contains(text))
        {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(100));
    }
    Err(format!("{url} did not show \"{text}\" within {GIVE_UP:?}"))
}

/// The browser side is rebuilt once the WASM in the site's pkg folder is newer than the
/// change.
fn wait_for_new_wasm(
    watch: &mut Watch,
    pkg: &Path,
    changed_at: SystemTime,
    since: Instant,
) -> Result<(), String> {
    while since.elapsed() < GIVE_UP {
        watch.check_running()?;
        if newest_wasm(pkg).is_some_and(|written| written > changed_at) {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(100));
    }
    Err("the WASM was not rebuilt".into())
}

fn newest_wasm(pkg: &Path) -> Option<SystemTime> {
    fs::read_dir(pkg)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "wasm"))
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max()
}
