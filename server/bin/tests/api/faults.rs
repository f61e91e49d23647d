//! Faults of the components around the server: what a person's request gets while one is
//! down, and that nothing is lost once it is back.

use crate::{
    binary::Server,
    helpers::{assert_error, fresh_database, spawn_app_with, unique_email, PASSWORD},
    mailbox::mail_server,
};
use app::api::{ErrorBody, ErrorCode, Session};
use reqwest::StatusCode;
use serde_json::json;
use std::{
    path::PathBuf,
    process::Command,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};
use tokio::net::{TcpListener, TcpStream};

/// A mail server that can be down: while `down`, every connection is closed at once
/// (counted in `refused`); once up, connections go through to the tests' maildev.
struct FlakyMailServer {
    url: String,
    down: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

async fn flaky_mail_server() -> FlakyMailServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let real = mail_server()
        .smtp_url
        .trim_start_matches("smtp://")
        .to_string();
    let (down, refused) = (
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicUsize::new(0)),
    );
    let task = {
        let (down, refused) = (down.clone(), refused.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if down.load(Ordering::SeqCst) {
                    refused.fetch_add(1, Ordering::SeqCst);
                    drop(client);
                    continue;
                }
                let real = real.clone();
                tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(real).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        })
    };
    FlakyMailServer {
        url,
        down,
        refused,
        _task: task,
    }
}

#[tokio::test]
async fn mail_sent_while_the_mail_server_is_down_arrives_once_it_is_back() {
    let smtp = flaky_mail_server().await;
    let app = spawn_app_with(&[
        ("SMTP_URL", smtp.url.as_str()),
        ("MAIL_FROM", "Tests <tests@example.com>"),
    ])
    .await;
    let email = unique_email();
    // Both requests succeed at once whatever the mail server does: registration mails a
    // verification code, the forgotten password a reset link.
    app.register(&email).await;
    let forgot = app
        .post_json("/api/auth/password/forgot", json!({ "email": email }))
        .await;
    assert_eq!(forgot.status(), StatusCode::ACCEPTED);
    // Each message's first try finds the mail server down.
    let started = Instant::now();
    while smtp.refused.load(Ordering::SeqCst) < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no try to send"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    smtp.down.store(false, Ordering::SeqCst);
    // Retried, both arrive.
    let verification = mail_server()
        .nth_with_subject(&email, "Your verification code", 1)
        .await;
    let reset = mail_server()
        .nth_with_subject(&email, "Reset your password", 1)
        .await;
    assert!(verification.text.contains("code"), "{}", verification.text);
    assert!(reset.text.contains("/reset-password"), "{}", reset.text);
}

/// The log lines whose message is `message` (the binary logs JSON).
fn logged(server: &Server, message: &str) -> Vec<serde_json::Value> {
    server
        .log_lines()
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["fields"]["message"] == message)
        .collect()
}

/// Mail that cannot be sent at all is tried three times, then logged as failed; the
/// request that queued it succeeded at once.
#[tokio::test]
async fn mail_that_cannot_be_sent_is_retried_then_logged_as_failed() {
    // A mail server that stays down: every connection closed at once.
    let smtp = flaky_mail_server().await;
    let server = Server::start(&[
        ("SMTP_URL", smtp.url.as_str()),
        ("MAIL_FROM", "Tests <tests@example.com>"),
    ]);
    let email = unique_email();
    let asked = Instant::now();
    let response = reqwest::Client::new()
        .post(server.url("/api/auth/register"))
        .json(&json!({ "email": email, "password": PASSWORD, "name": "Unmailed" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    // Long before the tries are over (2 s and 10 s apart): the request did not wait for them.
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );
    // Tries after 0, 2 and 12 s.
    while logged(&server, "mail could not be sent").is_empty() {
        assert!(
            asked.elapsed() < Duration::from_secs(40),
            "no failure logged: {:?}",
            server.log_lines()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let failed = logged(&server, "mail could not be sent");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["level"], "ERROR");
    assert_eq!(failed[0]["fields"]["to"], email.as_str());
    assert_eq!(logged(&server, "mail not sent yet; retrying").len(), 2);
}

/// A database the server cannot use is the service unavailable, not a server error: 503
/// `unavailable` with a `Retry-After`, as `/readyz` says. Here its pool is closed (the one
/// way to cut off a SQLite database); the PostgreSQL test below stops the server itself.
#[tokio::test]
async fn requests_needing_a_database_out_of_use_answer_503_unavailable() {
    let app = spawn_app_with(&[]).await;
    let email = unique_email();
    app.register(&email).await;
    app.db.close().await;
    let login = app
        .post_json(
            "/api/auth/login",
            json!({ "email": email, "password": PASSWORD }),
        )
        .await;
    let retry_after = login.headers().get("retry-after").cloned();
    assert_error(
        login,
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Unavailable,
    )
    .await;
    assert!(retry_after.is_some(), "no Retry-After");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
}

/// People signed in as non-browser clients do (each refresh token answered in the body):
/// some refresh as fast as they can when the server is killed, others have just lost the
/// answer of a refresh the server committed.
const LOADING_CLIENTS: usize = 8;
const LOSING_CLIENTS: usize = 4;

/// One refresh as a non-browser client; `None` when the answer was lost with the server.
async fn refresh_in_body(
    client: &reqwest::Client,
    url: &str,
    token: &str,
) -> Option<(StatusCode, Option<Session>)> {
    let response = client
        .post(url)
        .bearer_auth(token)
        .header("x-refresh-token-delivery", "body")
        .send()
        .await
        .ok()?;
    let status = response.status();
    // A body cut short by the kill is an answer lost too.
    let body = response.bytes().await.ok()?;
    Some((status, serde_json::from_slice(&body).ok()))
}

/// Each client refreshes as fast as it can until the server dies under it, and returns the
/// token it last presented (its answer may have been lost) and how many rotations it saw.
async fn refresh_until_the_server_dies(url: String, mut token: String) -> (String, usize) {
    let client = reqwest::Client::new();
    let mut rotations = 0;
    loop {
        match refresh_in_body(&client, &url, &token).await {
            Some((StatusCode::OK, Some(session))) => {
                token = session.refresh_token.expect("asked for in the body");
                rotations += 1;
            }
            Some((StatusCode::OK, None)) | None => return (token, rotations),
            Some((status, _)) => panic!("a refresh answered {status} before the kill"),
        }
    }
}

/// `kill -9` during a refresh load, then a restart on the same database: no family forks or
/// loses a committed rotation, every client retrying its last refresh (within the grace
/// window) carries on instead of being logged out, and everyone can still sign in.
#[tokio::test]
async fn a_server_killed_during_refreshes_loses_no_rotation_and_its_clients_carry_on() {
    let dir = tempfile::tempdir().unwrap();
    let database = fresh_database(&dir).await;
    // A window wide enough for a restart on a busy machine, said here rather than assumed.
    let grace = Duration::from_secs(60);
    let grace_secs = grace.as_secs().to_string();
    let vars = [
        ("DATABASE_URL", database.as_str()),
        ("RATE_LIMIT_ENABLED", "false"),
        ("AUTH_REFRESH_GRACE_SECS", grace_secs.as_str()),
    ];
    let mut server = Server::start_in(dir.path(), &vars);
    let client = reqwest::Client::new();
    let mut people = Vec::new();
    for _ in 0..LOADING_CLIENTS + LOSING_CLIENTS {
        let email = unique_email();
        let response = client
            .post(server.url("/api/auth/register"))
            .header("x-refresh-token-delivery", "body")
            .json(&json!({ "email": email, "password": PASSWORD, "name": "Killed" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let session: Session = response.json().await.unwrap();
        people.push((email, session.refresh_token.unwrap()));
    }
    for round in 0..3 {
        let (loading, losing) = people.split_at_mut(LOADING_CLIENTS);
        let load: Vec<_> = loading
            .iter()
            .map(|(_, token)| {
                tokio::spawn(refresh_until_the_server_dies(
                    server.url("/api/auth/refresh"),
                    token.clone(),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(600)).await;
        // No rotation whose answer is lost below is older than this.
        let first_lost = Instant::now();
        // Answered, so committed, but the answer never reaches its client (as when the
        // process dies between the commit and the write): the client keeps its token.
        for (email, token) in losing.iter() {
            let url = server.url("/api/auth/refresh");
            let (status, _) = refresh_in_body(&client, &url, token).await.unwrap();
            assert_eq!(status, StatusCode::OK, "round {round}: {email}");
        }
        server.kill();
        let mut rotations = 0;
        for (person, done) in loading.iter_mut().zip(load) {
            let (token, seen) = done.await.unwrap();
            person.1 = token;
            rotations += seen;
        }
        assert!(rotations > 0, "round {round}: no refresh before the kill");
        // Restarts take time: the retries come a second or more after the rotations (the
        // grace window is judged in whole seconds).
        tokio::time::sleep(Duration::from_millis(1100)).await;
        server = Server::start_in(dir.path(), &vars);
        // Each retries the refresh whose answer it may have lost: a rotation committed
        // before the kill converges, one that was not is made now.
        for (email, token) in people.iter_mut() {
            // A retry past the window would be refused rightly, and prove nothing.
            assert!(
                first_lost.elapsed() < grace,
                "round {round}: retried too late"
            );
            let url = server.url("/api/auth/refresh");
            let (status, session) = refresh_in_body(&client, &url, token).await.unwrap();
            assert_eq!(status, StatusCode::OK, "round {round}: {email} logged out");
            *token = session.unwrap().refresh_token.unwrap();
        }
    }
    // Every family is one unbroken chain, and each client holds its newest token.
    sqlx::any::install_default_drivers();
    let mut db = <sqlx::AnyConnection as sqlx::Connection>::connect(&database)
        .await
        .unwrap();
    for (email, token) in &people {
        let (family, generation): (String, i64) = sqlx::query_as(
            "select family_id, generation from refresh_tokens where token_hash = $1",
        )
        .bind(server::auth::tokens::hash(token))
        .fetch_one(&mut db)
        .await
        .unwrap();
        let (newest, count, distinct): (i64, i64, i64) = sqlx::query_as(
            "select max(generation), count(*), count(distinct generation) \
             from refresh_tokens where family_id = $1",
        )
        .bind(&family)
        .fetch_one(&mut db)
        .await
        .unwrap();
        let (recorded, revoked): (i64, Option<i64>) =
            sqlx::query_as("select generation, revoked_at from refresh_families where id = $1")
                .bind(&family)
                .fetch_one(&mut db)
                .await
                .unwrap();
        assert_eq!(generation, newest, "{email} does not hold the newest token");
        assert_eq!(
            recorded, newest,
            "{email}: the family and its tokens disagree"
        );
        assert_eq!(
            (count, distinct),
            (newest + 1, newest + 1),
            "{email}: a gap or a fork"
        );
        assert_eq!(revoked, None, "{email}: the login was revoked");
        let login = client
            .post(server.url("/api/auth/login"))
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), StatusCode::OK, "{email} cannot sign in");
    }
}

/// The fault step's own PostgreSQL server (`cargo xtask test`), which a test may stop and
/// start: `FAULT_PG_DIR` holds its data folder and log, `FAULT_PG_BIN` its programs,
/// `FAULT_PG_OPTIONS` the options it was started with, `FAULT_PG_USER` whom it runs as.
struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    options: String,
    user: Option<String>,
}

impl Postgres {
    fn from_env() -> Option<Postgres> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Some(Postgres {
            dir: var("FAULT_PG_DIR")?.into(),
            bin: var("FAULT_PG_BIN")?.into(),
            options: var("FAULT_PG_OPTIONS")?,
            user: var("FAULT_PG_USER"),
        })
    }

    /// Runs `pg_ctl` on a blocking thread: the server under test keeps serving meanwhile.
    async fn pg_ctl(&self, args: &[&str]) {
        let (command, args) = (self.command(), args.iter().map(|a| a.to_string()).collect());
        tokio::task::spawn_blocking(move || run_pg_ctl(command, args))
            .await
            .unwrap();
    }

    fn command(&self) -> Command {
        let program = self.bin.join("pg_ctl");
        let mut command = match &self.user {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(program);
                command
            }
            None => Command::new(program),
        };
        command
            .current_dir(&self.dir)
            .arg("-D")
            .arg(self.dir.join("data"));
        command
    }

    /// As an operator stops it: every connection ended, new ones refused.
    async fn stop(&self) {
        self.pg_ctl(&["stop", "--wait", "--silent", "-m", "fast"])
            .await;
    }

    async fn start(&self) {
        let log = self.dir.join("server.log");
        let log = log.to_str().unwrap();
        self.pg_ctl(&[
            "start",
            "--wait",
            "--silent",
            "-l",
            log,
            "-o",
            &self.options,
        ])
        .await;
    }
}

fn run_pg_ctl(mut command: Command, args: Vec<String>) {
    let status = command.args(&args).status().unwrap();
    assert!(status.success(), "pg_ctl {args:?}: {status}");
}

/// Counts the panics of this process until dropped, then puts the previous hook back.
struct CountPanics {
    previous: Arc<PanicHook>,
}

type PanicHook = dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send;

impl CountPanics {
    fn install(count: Arc<AtomicUsize>) -> CountPanics {
        let previous: Arc<PanicHook> = Arc::from(std::panic::take_hook());
        let chained = previous.clone();
        std::panic::set_hook(Box::new(move |info| {
            count.fetch_add(1, Ordering::SeqCst);
            chained(info);
        }));
        CountPanics { previous }
    }
}

impl Drop for CountPanics {
    fn drop(&mut self) {
        let previous = self.previous.clone();
        std::panic::set_hook(Box::new(move |info| previous(info)));
    }
}

/// What the load saw: every answer's status and code, and whether a 503 said when to
/// come back.
#[derive(Default)]
struct Seen {
    answers: Vec<(StatusCode, Option<ErrorCode>, bool)>,
    lost: usize,
}

/// How many answers of each status and code, and how many requests got none.
fn summary(seen: &Seen) -> (std::collections::BTreeMap<String, usize>, usize) {
    let mut counts = std::collections::BTreeMap::new();
    for (status, code, _) in &seen.answers {
        *counts
            .entry(format!("{} {code:?}", status.as_u16()))
            .or_default() += 1;
    }
    (counts, seen.lost)
}

async fn sign_in_until(stop: Arc<AtomicBool>, url: String, email: String, seen: Arc<Mutex<Seen>>) {
    let client = reqwest::Client::new();
    while !stop.load(Ordering::SeqCst) {
        let answer = client
            .post(&url)
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
            .await;
        let Ok(response) = answer else {
            seen.lock().unwrap().lost += 1;
            continue;
        };
        let status = response.status();
        let retry_after = response.headers().contains_key("retry-after");
        let code = response
            .json::<ErrorBody>()
            .await
            .ok()
            .map(|body| body.error.code);
        seen.lock()
            .unwrap()
            .answers
            .push((status, code, retry_after));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // As a client told to come back later would, if less patient.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// PostgreSQL stopped under load and started again: while it is down every request that
/// needs it answers 503 `unavailable` with a `Retry-After` (never a 500, never a dropped
/// connection), `/readyz` says so, and the same process serves again within seconds of it
/// coming back, by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_under_load_answers_unavailable_and_the_server_recovers_by_itself() {
    let required = std::env::var("FAULT_PG_REQUIRED").is_ok_and(|v| v == "1");
    let Some(postgres) = Postgres::from_env() else {
        assert!(!required, "FAULT_PG_REQUIRED, but FAULT_PG_* incomplete");
        eprintln!("skipped: needs the fault step's own PostgreSQL (cargo xtask test)");
        return;
    };
    // The server runs in this process: any panic of its tasks is counted (the fault step
    // runs this test alone, so the hook sees nothing else).
    let panics = Arc::new(AtomicUsize::new(0));
    let _hook = CountPanics::install(panics.clone());
    let app = spawn_app_with(&[("RATE_LIMIT_ENABLED", "false")]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut load = Vec::new();
    for _ in 0..4 {
        let email = unique_email();
        app.register(&email).await;
        load.push(tokio::spawn(sign_in_until(
            stop.clone(),
            app.url("/api/auth/login"),
            email,
            seen.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    postgres.stop().await;
    // Down: readiness says so, and requests are told to come back.
    let started = Instant::now();
    loop {
        let ready = app.get("/readyz").await.status();
        let told = seen
            .lock()
            .unwrap()
            .answers
            .iter()
            .any(|(status, code, _)| {
                *status == StatusCode::SERVICE_UNAVAILABLE && *code == Some(ErrorCode::Unavailable)
            });
        if ready == StatusCode::SERVICE_UNAVAILABLE && told {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the outage was not noticed: /readyz {ready}, answers {:?}",
            summary(&seen.lock().unwrap())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let down_answers = seen.lock().unwrap().answers.len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let restarting = seen.lock().unwrap().answers.len();
    postgres.start().await;
    // Back: the same process serves again, by itself.
    let started = Instant::now();
    loop {
        let ready = app.get("/readyz").await.status();
        let signed_in = seen.lock().unwrap().answers[down_answers..]
            .iter()
            .any(|(status, _, _)| *status == StatusCode::OK);
        if ready == StatusCode::OK && signed_in {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no recovery within 20 s: /readyz {ready}, answers {:?}",
            summary(&seen.lock().unwrap())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovered_in = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    for task in load {
        task.await.unwrap();
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.lost, 0, "requests without an answer");
    for (n, (status, code, retry_after)) in seen.answers.iter().enumerate() {
        match *status {
            StatusCode::OK => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(retry_after, "a 503 without Retry-After");
                // Once the database is starting again, a request still waiting for a
                // connection may time out just after another made one: busy, not down.
                let busy_is_true = n >= restarting && *code == Some(ErrorCode::Overloaded);
                assert!(
                    *code == Some(ErrorCode::Unavailable) || busy_is_true,
                    "answer {n}: 503 {code:?}"
                );
            }
            other => panic!("answered {other} ({code:?}) during the outage"),
        }
    }
    assert_eq!(panics.load(Ordering::SeqCst), 0, "a panic in this process");
    eprintln!(
        "{} answers, {} of them 503; serving again {:.1} s after the start",
        seen.answers.len(),
        seen.answers
            .iter()
            .filter(|(s, _, _)| *s == StatusCode::SERVICE_UNAVAILABLE)
            .count(),
        recovered_in.as_secs_f64()
    );
}
