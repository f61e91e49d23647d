//! The site's files (the WASM, JS and CSS under `/pkg`, and `public/`) and how long
//! browsers may keep them.
//!
//! A release build (`cargo xtask`'s, see the README) names every file under `/pkg` after
//! its content's hash, so a name never changes meaning: those are kept a year, without
//! asking again. Anything else is asked about again before each use (`no-cache`, answered
//! 304 while it has not changed), and pages, which differ per request (a CSP nonce), are
//! never stored at all. When the build made brotli or gzip copies (`--precompress`), a
//! browser that accepts them gets those.

use axum::{
    extract::Request,
    http::{header, HeaderValue},
    middleware::{self, Next},
    response::Response,
    Router,
};
use leptos::config::LeptosOptions;
use std::path::{Path, PathBuf};
use tower_http::services::ServeDir;

const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
const REVALIDATE: HeaderValue = HeaderValue::from_static("no-cache");
const NEVER_STORE: HeaderValue = HeaderValue::from_static("no-store");

/// `/pkg/…` from the site's pkg folder, with the caching its names allow.
pub fn pkg_router<S: Clone + Send + Sync + 'static>(options: &LeptosOptions) -> Router<S> {
    let files = ServeDir::new(pkg_dir(options))
        .precompressed_br()
        .precompressed_gzip();
    Router::new()
        .nest_service(&format!("/{}", options.site_pkg_dir), files)
        .layer(middleware::from_fn(pkg_cache_policy))
}

async fn pkg_cache_policy(request: Request, next: Next) -> Response {
    let hashed = hashed_name(request.uri().path());
    let mut response = next.run(request).await;
    let keep = response_is_the_file(response.status()) && hashed;
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        if keep { IMMUTABLE } else { REVALIDATE },
    );
    // The same URL answers brotli, gzip or plain by `Accept-Encoding`: a shared cache
    // must keep them apart.
    headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    response
}

fn response_is_the_file(status: axum::http::StatusCode) -> bool {
    status.is_success() || status == axum::http::StatusCode::NOT_MODIFIED
}

/// Pages (HTML) are never stored; other files from `public/` are asked about again.
pub async fn page_cache_policy(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let headers = response.headers_mut();
    if html {
        headers.insert(header::CACHE_CONTROL, NEVER_STORE);
    } else if !headers.contains_key(header::CACHE_CONTROL) {
        // A file of `public/` (its compressed copies are served too).
        headers.insert(header::CACHE_CONTROL, REVALIDATE);
        headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

/// Whether a file name carries the hash cargo-leptos puts in it (`name.HASH.ext`, the
/// hash 22 characters of base64url). The split loader's name before hashing is a
/// placeholder of 22 underscores: not a hash.
pub fn hashed_name(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let mut parts = name.rsplit('.');
    let (Some(_ext), Some(hash), Some(stem)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    !stem.is_empty()
        && hash.len() == 22
        && hash
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && hash.bytes().any(|b| b != b'_')
}

/// Whether the files a hashed release build names are there: its hash file beside the
/// executable (written by cargo-leptos) naming a WASM file that exists. A later build
/// without hashing empties the site folder but leaves the hash file: then this is false,
/// and the pages name the files as they are.
pub fn hashed_build_present(options: &LeptosOptions, exe_dir: &Path) -> bool {
    let Ok(hashes) = std::fs::read_to_string(exe_dir.join(options.hash_file.as_ref())) else {
        return false;
    };
    let Some(wasm_hash) = hashes.lines().find_map(|line| {
        let (file, hash) = line.split_once(':')?;
        (file.trim() == "wasm").then(|| hash.trim().to_string())
    }) else {
        return false;
    };
    pkg_dir(options)
        .join(format!("{}.{wasm_hash}.wasm", options.output_name))
        .is_file()
}

/// Says so when the pages will name files that are not there: a hashed build deployed
/// without its hash file, say. Only a log line: the server still serves the API.
pub fn warn_if_site_missing(options: &LeptosOptions) {
    if options.hash_files {
        return;
    }
    let pkg = pkg_dir(options);
    let plain = pkg.join(format!("{}.wasm", options.output_name));
    let plain_bg = pkg.join(format!("{}_bg.wasm", options.output_name));
    if plain.is_file() || plain_bg.is_file() {
        return;
    }
    let hashed = std::fs::read_dir(&pkg)
        .into_iter()
        .flatten()
        .flatten()
        .any(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.starts_with(&format!("{}.", options.output_name)) && name.ends_with(".wasm")
        });
    if hashed {
        tracing::error!(
            pkg = %pkg.display(),
            hash_file = %options.hash_file,
            "the site's files are named by their hashes, but the hash file is not beside the \
             server: pages will name files that do not exist (copy it with the server)"
        );
    } else {
        tracing::warn!(pkg = %pkg.display(), "no WASM in the site folder: pages will not hydrate");
    }
}

fn pkg_dir(options: &LeptosOptions) -> PathBuf {
    Path::new(options.site_root.as_ref()).join(options.site_pkg_dir.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names_are_recognised() {
        assert!(hashed_name("/pkg/jwt-auth.Ab3_-xYz0123456789abcd.wasm"));
        assert!(hashed_name(
            "/pkg/split_admin_123.Ab3_-xYz0123456789abcd.wasm"
        ));
        assert!(hashed_name(
            "__wasm_split_manifest.Ab3_-xYz0123456789abcd.json"
        ));
        // Not hashed: the plain names, the loader's placeholder, a short middle part.
        assert!(!hashed_name("/pkg/jwt-auth.wasm"));
        assert!(!hashed_name("/pkg/jwt-auth_bg.wasm"));
        assert!(!hashed_name("/pkg/__wasm_split.______________________.js"));
        assert!(!hashed_name("/pkg/jwt-auth.abc.js"));
        assert!(!hashed_name("/pkg/.Ab3_-xYz0123456789abcd.js"));
        assert!(!hashed_name("/pkg/jwt-auth.Ab3_-xYz01234567.9abcd.js"));
    }

    #[test]
    fn a_stale_hash_file_does_not_count() {
        let site = std::env::temp_dir().join(format!("assets-test-{}", std::process::id()));
        let exe_dir = site.join("bin");
        std::fs::create_dir_all(site.join("pkg")).unwrap();
        std::fs::create_dir_all(&exe_dir).unwrap();
        let options = LeptosOptions::builder()
            .output_name("app")
            .site_root(site.display().to_string())
            .site_pkg_dir("pkg")
            .build();
        assert!(!hashed_build_present(&options, &exe_dir), "no hash file");
        std::fs::write(
            exe_dir.join("hash.txt"),
            "js: Js0123456789abcdefghij\nwasm: Wa0123456789abcdefghij\n",
        )
        .unwrap();
        assert!(
            !hashed_build_present(&options, &exe_dir),
            "its files are gone"
        );
        std::fs::write(site.join("pkg/app.Wa0123456789abcdefghij.wasm"), b"").unwrap();
        assert!(hashed_build_present(&options, &exe_dir));
        std::fs::remove_dir_all(&site).unwrap();
    }
}
