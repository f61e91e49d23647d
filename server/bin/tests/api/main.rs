//! One integration-test binary: every test starts the real app with `spawn_app()`.
//! Runs on SQLite, and on PostgreSQL when `TEST_DATABASE_URL` names a server.

// All of this binary is test code: its helpers (`spawn_app`, the typed calls of `TestApp`,
// the mailbox) may unwrap, expect and panic like the tests, though clippy.toml's test
// exemptions only reach `#[test]` functions and `#[cfg(test)]` modules.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
// The binary's own definition of the app's pages, so the tests serve what it serves.
#[path = "../../src/pages.rs"]
mod app_pages;
mod audit_retention;
mod binary;
mod errors;
mod faults;
mod group_commit;
mod guards;
mod headers;
mod health;
mod helpers;
mod input;
mod instances;
mod keys;
mod limits;
mod login;
mod logout;
mod mailbox;
mod me;
mod mfa;
mod oidc;
mod openapi;
mod operating;
mod passkeys;
mod password;
mod paths;
mod process;
mod provider;
mod proxies;
mod pruning;
mod race_matrix;
mod rate_limits;
mod recovery;
mod refresh;
mod register;
mod security;
mod sessions;
mod startup;
mod users;
mod verification;
