//! `cargo xtask wasm-floor`: what the smallest hydrating Leptos app weighs when built as the
//! release build builds the app's WASM (the `wasm-release` profile's opt-level z and LTO,
//! `.cargo/config.toml`'s erased components, wasm-bindgen, and wasm-opt with the options
//! cargo-leptos gives it), without and with one JSON call. The main WASM cannot get below
//! this however little of the app it holds. Figures, not a test.
//!
//! The floor crate takes the workspace's `Cargo.lock` each time, so its Leptos and
//! wasm-bindgen are the app's versions (the wasm-bindgen CLI must match the latter).

use crate::util::{cargo, command, output, root, run};
use std::{fs, path::Path};

const CRATE: &str = "xtask/wasm-floor";

pub fn run_all() -> Result<(), String> {
    let lock = root().join(CRATE).join("Cargo.lock");
    fs::copy(root().join("Cargo.lock"), &lock)
        .map_err(|e| format!("cannot copy Cargo.lock to {}: {e}", lock.display()))?;
    for (features, folder, what) in [
        ("", "plain", "router, meta tags, one form"),
        (
            "fetch",
            "fetch",
            "the same and one gloo-net JSON call with serde_json",
        ),
    ] {
        let out = root().join("target/wasm-floor").join(folder);
        build(features, &out)?;
        let sizes = sizes(&out.join("floor.wasm"))?;
        println!("    {what}: {sizes}");
    }
    Ok(())
}

fn build(features: &str, out: &Path) -> Result<(), String> {
    let mut build = cargo();
    build
        .current_dir(root().join(CRATE))
        .args(["build", "--lib", "--target", "wasm32-unknown-unknown"])
        .args(["--profile", "wasm-release", "--features", features])
        // The app's WASM target folder. The release build's dependencies are built with
        // other flags (the split's `--emit-relocs`), so the first run builds its own.
        .arg("--target-dir")
        .arg(root().join("target/front"));
    run(&mut build)?;
    let wasm = root().join("target/front/wasm32-unknown-unknown/wasm-release/wasm_floor.wasm");
    run(command("wasm-bindgen")
        .args(["--target", "web", "--out-name", "floor", "--out-dir"])
        .arg(out)
        .arg(&wasm))?;
    let bound = out.join("floor_bg.wasm");
    run(command("wasm-opt")
        // As cargo-leptos 0.3.11 runs it.
        .args([
            "-Oz",
            "--enable-bulk-memory",
            "--enable-nontrapping-float-to-int",
        ])
        .arg(&bound)
        .arg("-o")
        .arg(out.join("floor.wasm")))
}

/// Raw, gzip (level 9) and brotli (quality 11) sizes, by Node's zlib (no dependency here).
fn sizes(file: &Path) -> Result<String, String> {
    const SCRIPT: &str = "const z = require('zlib'); \
        const b = require('fs').readFileSync(process.argv[1]); \
        const q = { params: { [z.constants.BROTLI_PARAM_QUALITY]: 11 } }; \
        console.log(`${b.length} bytes raw, ${z.gzipSync(b, { level: 9 }).length} gzip, \
        ${z.brotliCompressSync(b, q).length} brotli`);";
    output(command("node").args(["-e", SCRIPT]).arg(file))
        .map(|line| line.trim().to_string())
        .ok_or_else(|| format!("cannot measure {}", file.display()))
}
