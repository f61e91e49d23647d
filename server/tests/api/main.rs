//! One integration-test binary: every test starts the real app with `spawn_app()`.
//! Runs on SQLite, and on PostgreSQL when `TEST_DATABASE_URL` names a server.

mod admin;
mod audit_retention;
mod errors;
mod guards;
mod headers;
mod health;
mod helpers;
mod input;
mod limits;
mod login;
mod logout;
mod mailbox;
mod me;
mod password;
mod paths;
mod process;
mod race_matrix;
mod recovery;
mod refresh;
mod register;
mod sessions;
mod startup;
mod users;
mod verification;
