//! Operating the server: Prometheus metrics on their own listener (`METRICS_ADDR`), request
//! ids, JSON logs (`LOG_FORMAT`) and what never reaches a log.
//!
//! Metrics have one recorder a process, shared by every app this binary starts at once, so
//! in-process tests assert only series no other test makes (an id of their own), and the
//! counts of outcomes are read from the real binary in a process of its own.

use crate::{
    binary::Server,
    helpers::{refresh_cookie, spawn_app, spawn_app_with, unique_email, TestApp, PASSWORD},
    mailbox::{code_in, mail_server, reset_token_in},
};
use app::api::{Session, SessionInfo};
use reqwest::{header::HeaderValue, StatusCode};
use serde_json::{json, Value};
use std::{collections::HashSet, net::SocketAddr};

const METRICS_ON_ANY_PORT: (&str, &str) = ("METRICS_ADDR", "127.0.0.1:0");

async fn scrape(addr: SocketAddr) -> String {
    let response = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    response.text().await.unwrap()
}

/// The sum of the samples of `name` carrying every one of `labels` (0 when none does).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, rest) = series.split_once('{').unwrap_or((series, ""));
            let wanted = series_name == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            wanted.then(|| value.parse::<f64>().unwrap())
        })
        .sum()
}

/// The lines of the series `name`.
fn series<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        })
        .collect()
}

async fn metrics_app() -> (TestApp, SocketAddr) {
    let app = spawn_app_with(&[METRICS_ON_ANY_PORT]).await;
    let metrics = app.metrics_addr.expect("a metrics listener");
    (app, metrics)
}

#[tokio::test]
async fn routes_are_labelled_by_their_pattern_never_by_their_path() {
    let (app, metrics) = metrics_app().await;
    let email = unique_email();
    let first = app.register(&email).await;
    app.login(&email).await;
    let sessions: Vec<SessionInfo> = app
        .client
        .get(app.url("/api/sessions"))
        .bearer_auth(&first.session.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let other = sessions.iter().find(|s| !s.current).expect("the login's");
    let ended = app
        .client
        .delete(app.url(&format!("/api/sessions/{}", other.id)))
        .bearer_auth(&first.session.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    // No route: a page that does not exist, and an API path that does not.
    let nowhere = uuid::Uuid::new_v4().simple().to_string();
    assert_eq!(
        app.get(&format!("/{nowhere}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/api/{nowhere}")).await.status(),
        StatusCode::NOT_FOUND
    );

    let text = scrape(metrics).await;
    let deleted = [
        ("method", "DELETE"),
        ("route", "/api/sessions/{id}"),
        ("status", "204"),
    ];
    assert!(
        sample(&text, "http_requests_total", &deleted) >= 1.0,
        "{text}"
    );
    assert!(
        sample(
            &text,
            "http_requests_total",
            &[("route", "fallback"), ("status", "404")]
        ) >= 1.0
    );
    assert!(
        sample(
            &text,
            "http_requests_total",
            &[("route", "/api/{*rest}"), ("status", "404")]
        ) >= 1.0
    );
    // A histogram (buckets), not a summary, by route.
    assert!(
        sample(
            &text,
            "http_request_duration_seconds_bucket",
            &[("route", "/api/sessions/{id}"), ("le", "+Inf")]
        ) >= 1.0,
        "{text}"
    );
    assert!(
        sample(
            &text,
            "http_request_duration_seconds_count",
            &[("route", "/api/auth/login")]
        ) >= 1.0
    );
    for raw in [other.id.as_str(), nowhere.as_str()] {
        assert!(!text.contains(raw), "a raw path in the metrics: {raw}");
    }
}

#[tokio::test]
async fn the_metrics_listener_serves_every_series_and_the_public_one_none() {
    let (app, metrics) = metrics_app().await;
    let email = unique_email();
    let signed = app.register(&email).await;
    app.login(&email).await;
    app.refresh(&signed.refresh_token()).await;

    let text = scrape(metrics).await;
    for name in [
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_request_duration_seconds_sum",
        "http_request_duration_seconds_count",
        "auth_logins_total",
        "auth_refresh_total",
        "auth_hash_queue",
        "db_pool_connections",
    ] {
        assert!(!series(&text, name).is_empty(), "no {name} in\n{text}");
    }
    assert!(text.contains("# TYPE http_request_duration_seconds histogram"));
    assert!(text.contains("# TYPE auth_hash_queue gauge"));
    // Every outcome is a series, even before it happens.
    for outcome in server::prometheus::LOGIN_OUTCOMES {
        let line = format!("auth_logins_total{{outcome=\"{outcome}\"}} ");
        assert!(text.contains(&line), "no {line} in\n{text}");
    }
    for outcome in server::prometheus::REFRESH_OUTCOMES {
        let line = format!("auth_refresh_total{{outcome=\"{outcome}\"}} ");
        assert!(text.contains(&line), "no {line} in\n{text}");
    }
    for state in ["idle", "in_use"] {
        let line = format!("db_pool_connections{{state=\"{state}\"}} ");
        assert!(text.contains(&line), "no {line} in\n{text}");
    }
    assert!(
        sample(&text, "db_pool_connections", &[]) >= 1.0,
        "the app holds a connection at least: {text}"
    );

    // The public listener has no metrics, at any path that names them.
    for path in ["/metrics", "/api/metrics", "/metrics/"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("http_requests_total"), "{path}: {body}");
    }
    // And the metrics listener serves nothing else.
    let elsewhere = reqwest::get(format!("http://{metrics}/api/me"))
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn without_metrics_addr_there_is_no_metrics_listener() {
    let app = spawn_app().await;
    assert_eq!(app.metrics_addr, None);
}

fn request_id(response: &reqwest::Response) -> String {
    response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string()
}

fn is_uuid(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok_and(|u| u.get_version_num() == 4)
}

#[tokio::test]
async fn every_answer_carries_a_request_id_the_clients_when_sane() {
    let app = spawn_app().await;
    // None sent: a new one each time, on pages, API answers and errors alike.
    let mut seen = HashSet::new();
    for path in ["/healthz", "/login", "/api/me", "/no-such-page", "/healthz"] {
        let response = app.get(path).await;
        let id = request_id(&response);
        assert!(is_uuid(&id), "{path}: {id}");
        assert!(seen.insert(id), "{path}: ids are not reused");
    }

    // A sane one is echoed.
    let sane = format!("edge-{}:retry/2", uuid::Uuid::new_v4().simple());
    let long_enough = "x".repeat(128);
    for id in [sane.as_str(), long_enough.as_str()] {
        let response = app
            .client
            .get(app.url("/api/me"))
            .header("x-request-id", id)
            .send()
            .await
            .unwrap();
        assert_eq!(request_id(&response), id);
    }

    // Anything else is replaced: spaces (a log line's separators), too long, not ASCII.
    let too_long = "x".repeat(129);
    let insane: [HeaderValue; 5] = [
        HeaderValue::from_static("forged request_id=admin"),
        HeaderValue::from_str(&too_long).unwrap(),
        HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        HeaderValue::from_static("tab\there"),
        HeaderValue::from_static(""),
    ];
    for value in insane {
        let response = app
            .client
            .get(app.url("/healthz"))
            .header("x-request-id", value.clone())
            .send()
            .await
            .unwrap();
        let id = request_id(&response);
        assert!(is_uuid(&id), "{value:?} replaced by {id}");
    }
}

fn post(
    url: String,
    body: Value,
    headers: &[(&str, &str)],
) -> impl std::future::Future<Output = reqwest::Response> {
    let mut request = reqwest::Client::new().post(url).json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    async move { request.send().await.unwrap() }
}

/// A refresh token presented as non-browser clients do, answered in the body.
async fn present(server: &Server, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.url("/api/auth/refresh"))
        .bearer_auth(token)
        .header("x-refresh-token-delivery", "body")
        .send()
        .await
        .unwrap()
}

async fn refreshed(server: &Server, token: &str) -> String {
    let response = present(server, token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let session: Session = response.json().await.unwrap();
    session.refresh_token.expect("asked for in the body")
}

#[tokio::test]
async fn the_binary_counts_sign_ins_and_refreshes_by_outcome() {
    let server = Server::start(&[METRICS_ON_ANY_PORT]);
    let metrics = server.metrics_addr.unwrap();
    assert_eq!(
        server.listening_sockets(),
        2,
        "the public and the metrics listener"
    );
    let before = scrape(metrics).await;

    let email = unique_email();
    let registered = post(
        server.url("/api/auth/register"),
        json!({"email": email, "password": PASSWORD, "name": "Metrics"}),
        &[],
    )
    .await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    let login = |password: &'static str| {
        post(
            server.url("/api/auth/login"),
            json!({"email": email, "password": password}),
            &[("x-refresh-token-delivery", "body")],
        )
    };
    let signed_in = login(PASSWORD).await;
    assert_eq!(signed_in.status(), StatusCode::OK);
    let first: Session = signed_in.json().await.unwrap();
    // Ten wrong passwords from one address spend the budget of the account there; the
    // eleventh attempt is refused before any hashing.
    for _ in 0..10 {
        assert_eq!(
            login("not the password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login("not the password").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    let a = first.refresh_token.expect("asked for in the body");
    let b = refreshed(&server, &a).await; // rotated
    assert_eq!(
        refreshed(&server, &a).await,
        b,
        "converged within the grace window"
    );
    let _c = refreshed(&server, &b).await; // rotated
                                           // `a` again, now that its child has a child: a replay.
    assert_eq!(
        present(&server, &a).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        present(&server, "not-a-token").await.status(),
        StatusCode::UNAUTHORIZED
    );

    let after = scrape(metrics).await;
    let delta = |name: &str, outcome: &str| {
        let labels = [("outcome", outcome)];
        sample(&after, name, &labels) - sample(&before, name, &labels)
    };
    let logins = [
        "ok",
        "invalid_credentials",
        "rate_limited",
        "account_disabled",
        "overloaded",
    ]
    .map(|outcome| delta("auth_logins_total", outcome));
    assert_eq!(logins, [1.0, 10.0, 1.0, 0.0, 0.0], "{after}");
    let refreshes = ["rotated", "converged", "reused", "invalid", "expired"]
        .map(|outcome| delta("auth_refresh_total", outcome));
    assert_eq!(refreshes, [2.0, 1.0, 1.0, 1.0, 0.0], "{after}");
    let login_route = [("route", "/api/auth/login"), ("method", "POST")];
    let counted = |text: &str, status: &str| {
        let labels = [login_route[0], login_route[1], ("status", status)];
        sample(text, "http_requests_total", &labels)
    };
    assert_eq!(counted(&after, "200") - counted(&before, "200"), 1.0);
    assert_eq!(counted(&after, "401") - counted(&before, "401"), 10.0);
    assert_eq!(counted(&after, "429") - counted(&before, "429"), 1.0);
    server.stop();
}

/// The JSON object of each line, failing on a line that is not one.
fn json_lines(log: &[String]) -> Vec<Value> {
    log.iter()
        .map(|line| {
            let event: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
            assert!(event.is_object(), "{line}");
            event
        })
        .collect()
}

/// The `request_id` of the request span around `event`, if any.
fn request_id_of(event: &Value) -> Option<&str> {
    event["spans"]
        .as_array()?
        .iter()
        .find(|span| span["name"] == "request")?["request_id"]
        .as_str()
}

#[tokio::test]
async fn json_logs_are_one_object_a_line_carrying_the_request_id() {
    let server = Server::start(&[]);
    assert_eq!(server.listening_sockets(), 1, "no metrics listener");
    let email = unique_email();
    let registered = post(
        server.url("/api/auth/register"),
        json!({"email": email, "password": PASSWORD, "name": "Logs"}),
        &[],
    )
    .await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    let ours = format!("logs-{}", uuid::Uuid::new_v4().simple());
    let login = |id: &str| {
        post(
            server.url("/api/auth/login"),
            json!({"email": email, "password": PASSWORD}),
            &[("x-request-id", id)],
        )
    };
    let response = login(&ours).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(request_id(&response), ours);
    // A forged id with a log line of its own in it is replaced, and never written.
    let forged = r#"x {"level":"ERROR","fields":{"message":"forged"}}"#;
    let response = login(forged).await;
    assert_eq!(response.status(), StatusCode::OK);
    let replaced = request_id(&response);
    assert!(is_uuid(&replaced), "{replaced}");
    let public_metrics = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(public_metrics.status(), StatusCode::NOT_FOUND);
    let log = server.stop();

    let events = json_lines(&log);
    let logged_in: Vec<&Value> = events
        .iter()
        .filter(|e| e["fields"]["message"] == "logged in")
        .collect();
    assert_eq!(logged_in.len(), 2, "{log:#?}");
    let ids: Vec<Option<&str>> = logged_in.iter().map(|e| request_id_of(e)).collect();
    assert_eq!(
        ids,
        [Some(ours.as_str()), Some(replaced.as_str())],
        "{log:#?}"
    );
    for event in &logged_in {
        assert_eq!(event["span"]["route"], "/api/auth/login", "{event}");
        assert_eq!(event["span"]["method"], "POST", "{event}");
    }
    assert!(!log.iter().any(|line| line.contains("forged")), "{log:#?}");
}

/// Whether `secret` is in `line`; a code (digits) only as a number of its own: inside a
/// longer number or a timestamp's fraction it is no leak.
fn holds(line: &str, secret: &str) -> bool {
    if !secret.bytes().all(|b| b.is_ascii_digit()) {
        return line.contains(secret);
    }
    line.match_indices(secret).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + secret.len()..].chars().next();
        let joined = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.');
        !joined(before) && !joined(after)
    })
}

/// The tokens of `session`, which the log must not hold.
fn keep(secrets: &mut Vec<(String, &'static str)>, session: &Session, what: &'static str) {
    // The signature is what makes an access token: any leak of the token holds it.
    let signature = session.access_token.rsplit('.').next().unwrap();
    secrets.push((signature.to_string(), what));
    if let Some(token) = &session.refresh_token {
        secrets.push((token.clone(), what));
    }
}

/// A whole run at `RUST_LOG=trace`: register, verify the email, fail a login, sign in,
/// refresh, forget and reset the password, sign in with the new one, sign out. Mail goes
/// to maildev: with mail written to the log (development), the log holds the codes and
/// links by design.
#[tokio::test]
async fn a_full_trace_log_holds_no_token_password_code_or_reset_link() {
    let mail = mail_server();
    let server = Server::start(&[("RUST_LOG", "trace"), ("SMTP_URL", &mail.smtp_url)]);
    let mut secrets: Vec<(String, &'static str)> = Vec::new();
    let email = unique_email();
    let password = format!("first-{}", uuid::Uuid::new_v4().simple());
    let wrong = format!("wrong-{}", uuid::Uuid::new_v4().simple());
    let new_password = format!("second-{}", uuid::Uuid::new_v4().simple());
    secrets.extend([
        (password.clone(), "password"),
        (wrong.clone(), "wrong password"),
        (new_password.clone(), "new password"),
    ]);

    let registered = post(
        server.url("/api/auth/register"),
        json!({"email": email, "password": password, "name": "Trace"}),
        &[("x-refresh-token-delivery", "body")],
    )
    .await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    let first: Session = registered.json().await.unwrap();
    keep(&mut secrets, &first, "register");
    let code = code_in(&mail.nth_message_to(&email, 1).await);
    let verified = reqwest::Client::new()
        .post(server.url("/api/auth/verify-email"))
        .bearer_auth(&first.access_token)
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), StatusCode::OK);

    let login = |password: String| {
        post(
            server.url("/api/auth/login"),
            json!({"email": email, "password": password}),
            &[],
        )
    };
    assert_eq!(
        login(wrong.clone()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // The cookie, as browsers get it.
    let signed_in = login(password.clone()).await;
    assert_eq!(signed_in.status(), StatusCode::OK);
    let cookie = refresh_cookie(signed_in.headers()).expect("the refresh cookie");
    let second: Session = signed_in.json().await.unwrap();
    keep(&mut secrets, &second, "login");
    secrets.push((cookie.value.clone(), "login cookie"));
    let rotated = reqwest::Client::new()
        .post(server.url("/api/auth/refresh"))
        .header("cookie", format!("refresh_token={}", cookie.value))
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), StatusCode::OK);
    let rotated_cookie = refresh_cookie(rotated.headers()).expect("a new cookie");
    let third: Session = rotated.json().await.unwrap();
    keep(&mut secrets, &third, "refresh");
    secrets.push((rotated_cookie.value.clone(), "refresh cookie"));
    let body_refresh = refreshed(&server, first.refresh_token.as_ref().unwrap()).await;
    secrets.push((body_refresh, "refresh in the body"));

    let forgot = post(
        server.url("/api/auth/password/forgot"),
        json!({ "email": email }),
        &[],
    )
    .await;
    assert_eq!(forgot.status(), StatusCode::ACCEPTED);
    let link = mail
        .nth_with_subject(&email, "Reset your password", 1)
        .await;
    let reset_token = reset_token_in(&link);
    let reset_id = format!("reset-{}", uuid::Uuid::new_v4().simple());
    let reset = post(
        server.url("/api/auth/password/reset"),
        json!({ "token": reset_token, "password": new_password }),
        &[("x-request-id", reset_id.as_str())],
    )
    .await;
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    let again = login(new_password.clone()).await;
    assert_eq!(again.status(), StatusCode::OK);
    let again_cookie = refresh_cookie(again.headers()).expect("the refresh cookie");
    let fourth: Session = again.json().await.unwrap();
    keep(&mut secrets, &fourth, "login after the reset");
    let logout = reqwest::Client::new()
        .post(server.url("/api/auth/logout"))
        .header("cookie", format!("refresh_token={}", again_cookie.value))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    secrets.extend([
        (again_cookie.value, "cookie after the reset"),
        (code, "verification code"),
        (reset_token, "reset token"),
    ]);
    let log = server.stop();

    // The run was logged below info too (tower-http's request events, sqlx's queries),
    // every request in it.
    let events = json_lines(&log);
    assert!(events.iter().any(|e| e["level"] == "DEBUG"), "{log:#?}");
    for route in [
        "/api/auth/verify-email",
        "/api/auth/password/reset",
        "/api/auth/refresh",
    ] {
        assert!(
            events.iter().any(|e| e["span"]["route"] == route),
            "{route} logged"
        );
    }
    // Work a request hands to a task of its own is logged as that request's too.
    let reset_done = events
        .iter()
        .find(|e| e["fields"]["message"] == "password reset")
        .expect("the reset logged");
    assert_eq!(
        request_id_of(reset_done),
        Some(reset_id.as_str()),
        "{reset_done}"
    );
    for (secret, what) in &secrets {
        if let Some(line) = log.iter().find(|line| holds(line, secret)) {
            panic!("the {what} ({secret}) is in the log: {line}");
        }
    }
}
