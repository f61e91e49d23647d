//! A real OpenID Connect provider for the tests: panva's oidc-provider (from end2end's npm
//! packages, see `end2end/scripts/oidc-provider.cjs`), started once per test binary on
//! loopback. Its development login page takes any login with any password, so a test picks
//! the account by its login (see the script's `findAccount`). Like maildev it stops by
//! itself when this process ends: it exits when its standard input (a pipe held here)
//! closes.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use reqwest::{header::LOCATION, redirect::Policy, Response, Url};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    net::{TcpListener, TcpStream},
    ops::Deref,
    path::Path,
    process::{Child, ChildStdin, Command, Stdio},
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

/// The app's public URL in these tests. Nothing listens there: the provider only redirects
/// the (hand-driven) browser to it, and the tests read that redirect.
pub const PUBLIC_URL: &str = "http://app.test";

/// The clients every provider process registers: (provider id, ID-token algorithm,
/// confidential). `other` is a second confidential client, for tokens meant for another
/// audience.
const CLIENTS: [(&str, &str, bool); 5] = [
    ("test", "RS256", true),
    ("es", "ES256", true),
    ("ed", "EdDSA", true),
    ("public", "RS256", false),
    ("other", "RS256", true),
];

pub struct Provider {
    pub issuer: String,
    process: Mutex<(Child, ChildStdin)>,
}

/// Another provider process, on a port of the test's choosing (so the app can be started
/// while nothing listens there yet). It stops when dropped.
pub struct ExtraProvider(Provider);

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The issuer of a provider on `port`: exactly what the script uses, no trailing slash.
pub fn issuer_at(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// The shared provider of this test binary.
pub fn provider() -> &'static Provider {
    static PROVIDER: OnceLock<Provider> = OnceLock::new();
    PROVIDER.get_or_init(|| start(free_port()))
}

/// Starts another provider on `port`, with the same clients as `provider()`.
pub fn start_extra(port: u16) -> ExtraProvider {
    ExtraProvider(start(port))
}

fn clients_json() -> String {
    let clients: Vec<Value> = CLIENTS
        .iter()
        .map(|&(id, alg, confidential)| {
            let mut client = json!({
                "client_id": client_id(id),
                "redirect_uris": [redirect_uri(id)],
                "id_token_signed_response_alg": alg,
            });
            if confidential {
                client["client_secret"] = json!(client_secret(id));
            }
            client
        })
        .collect();
    Value::Array(clients).to_string()
}

pub fn client_id(id: &str) -> String {
    format!("jwt-auth-{id}")
}

pub fn client_secret(id: &str) -> String {
    format!("{id}-secret")
}

pub fn redirect_uri(id: &str) -> String {
    format!("{PUBLIC_URL}/api/auth/oidc/{id}/callback")
}

fn start(port: u16) -> Provider {
    let end2end = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../end2end");
    assert!(
        end2end.join("node_modules/oidc-provider").exists(),
        "oidc-provider is not installed: run `cargo xtask setup` (npm ci in end2end)"
    );
    let mut child = Command::new("node")
        .current_dir(&end2end)
        .args([
            "scripts/oidc-provider.cjs",
            &port.to_string(),
            &clients_json(),
        ])
        .arg("--exit-with-stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node scripts/oidc-provider.cjs");
    let stdin = child.stdin.take().expect("piped stdin");
    // The provider warns on every start that it is a development setup (in-memory store,
    // development login pages, Node 20): true, and noise in test output. Anything else it
    // says (a failure to start) still shows.
    let stderr = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !line.starts_with("oidc-provider WARNING:") {
                eprintln!("oidc-provider: {line}");
            }
        }
    });
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the OpenID provider on {port} exited: {status}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the OpenID provider did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Provider {
        issuer: issuer_at(port),
        process: Mutex::new((child, stdin)),
    }
}

/// The app's settings for sign-in with the providers `ids` (of `CLIENTS`) at `issuer`.
/// A free function, so a test can configure a provider that is not running yet.
pub fn env_for(issuer: &str, ids: &[&str]) -> Vec<(String, String)> {
    let mut env = vec![
        ("PUBLIC_URL".to_string(), PUBLIC_URL.to_string()),
        ("OIDC_PROVIDERS".to_string(), ids.join(",")),
        // A public URL that is not loopback wants mail sent somewhere on purpose.
        ("SMTP_URL".to_string(), "log".to_string()),
    ];
    for &id in ids {
        let &(_, _, confidential) = CLIENTS
            .iter()
            .find(|(known, _, _)| *known == id)
            .unwrap_or_else(|| panic!("no test client {id:?}"));
        let prefix = format!("OIDC_{}", id.to_uppercase());
        env.push((format!("{prefix}_ISSUER"), issuer.to_string()));
        env.push((format!("{prefix}_CLIENT_ID"), client_id(id)));
        if confidential {
            env.push((format!("{prefix}_CLIENT_SECRET"), client_secret(id)));
        }
        env.push((format!("{prefix}_NAME"), format!("Test {id}")));
    }
    env
}

impl Provider {
    /// The app's settings for sign-in with the providers `ids` of this process.
    pub fn env(&self, ids: &[&str]) -> Vec<(String, String)> {
        env_for(&self.issuer, ids)
    }

    /// Signs in as `login` (any password does) and consents, like a browser sent to
    /// `authorize_url`. Returns where the provider finally sends that browser: the app's
    /// callback URL, with `code`, `state` and `iss` (or an error).
    pub async fn sign_in(&self, authorize_url: &str, login: &str) -> String {
        self.walk(authorize_url, Some(login)).await
    }

    /// Like `sign_in`, but cancels on the login page: the callback URL then carries
    /// `error=access_denied`.
    pub async fn cancel(&self, authorize_url: &str) -> String {
        self.walk(authorize_url, None).await
    }

    /// A browser of its own (a fresh cookie jar, so no provider session from an earlier
    /// sign-in is reused), following redirects by hand so that the one leaving the provider
    /// is returned instead of followed.
    async fn walk(&self, authorize_url: &str, login: Option<&str>) -> String {
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .build()
            .expect("a reqwest client");
        let origin = Url::parse(&self.issuer).expect("the issuer URL").origin();
        let mut response = send(browser.get(authorize_url)).await;
        for _ in 0..20 {
            let url = response.url().clone();
            if response.status().is_redirection() {
                let location = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .unwrap_or_else(|| panic!("a Location from {url}"));
                let next = url.join(location).expect("a redirect URL");
                if next.origin() != origin {
                    return next.to_string();
                }
                response = send(browser.get(next)).await;
                continue;
            }
            let status = response.status();
            let page = response.text().await.expect("the provider's page");
            let body = page.split_once("<body>").map_or(page.as_str(), |(_, b)| b);
            assert!(status.is_success(), "{status} from {url}: {body}");
            // The development pages (oidc-provider's lib/views): "Sign-in" posts prompt=login,
            // login and password to the interaction URL and links "[ Cancel ]" to its abort
            // URL; "Authorize" posts prompt=consent there.
            let title = between(&page, "<h1>", "</h1>");
            response = match (title, login) {
                (Some("Sign-in"), Some(login)) => {
                    let form = [
                        ("prompt", "login"),
                        ("login", login),
                        ("password", "any password"),
                    ];
                    send(browser.post(form_action(&url, &page)).form(&form)).await
                }
                (Some("Sign-in"), None) => {
                    let (before, _) = page
                        .split_once(">[ Cancel ]</a>")
                        .unwrap_or_else(|| panic!("a cancel link at {url}: {body}"));
                    let (_, href) = before.rsplit_once("href=\"").expect("the link's href");
                    let abort = url
                        .join(&unescape(href.trim_end_matches('"')))
                        .expect("a URL");
                    send(browser.get(abort)).await
                }
                (Some("Authorize"), Some(_)) => {
                    let form = [("prompt", "consent")];
                    send(browser.post(form_action(&url, &page)).form(&form)).await
                }
                _ => panic!("unexpected page at {url}: {body}"),
            };
        }
        panic!("the provider kept redirecting from {authorize_url}");
    }
}

impl ExtraProvider {
    pub fn issuer(&self) -> &str {
        &self.0.issuer
    }

    /// Freezes the provider's process (SIGSTOP): the kernel still accepts connections to
    /// its port, and nothing ever answers them, as with a provider that hangs.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Lets a frozen provider run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        let process = self.0.process.lock().expect("the provider process");
        let pid = libc::pid_t::try_from(process.0.id()).expect("a pid");
        // SAFETY: `kill` only sends a signal, to the child this harness started.
        assert_eq!(
            unsafe { libc::kill(pid, signal) },
            0,
            "signal {signal} to {pid}"
        );
    }
}

impl Deref for ExtraProvider {
    type Target = Provider;

    fn deref(&self) -> &Provider {
        &self.0
    }
}

impl Drop for ExtraProvider {
    fn drop(&mut self) {
        if let Ok(mut process) = self.0.process.lock() {
            let _ = process.0.kill();
            let _ = process.0.wait();
        }
    }
}

async fn send(request: reqwest::RequestBuilder) -> Response {
    request.send().await.expect("the OpenID provider answers")
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let (_, rest) = text.split_once(start)?;
    Some(rest.split_once(end)?.0)
}

fn form_action(page_url: &Url, page: &str) -> Url {
    let action = between(page, "<form", ">")
        .and_then(|form| between(form, "action=\"", "\""))
        .unwrap_or_else(|| panic!("a form at {page_url}: {page}"));
    page_url.join(&unescape(action)).expect("a form URL")
}

/// The pages escape attribute values as HTML; URLs there only ever need `&amp;`.
fn unescape(value: &str) -> String {
    value.replace("&amp;", "&")
}

fn query(url: &str) -> HashMap<String, String> {
    Url::parse(url)
        .expect("a URL")
        .query_pairs()
        .into_owned()
        .collect()
}

/// An authorize URL for the client `id`, as the app would build one (code flow with PKCE),
/// and the PKCE verifier that goes with it.
async fn authorize_url(id: &str, state: &str, nonce: &str) -> (String, String) {
    let discovery = discovery().await;
    let verifier = URL_SAFE_NO_PAD.encode(Sha256::digest(format!("verifier for {state}")));
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(&verifier));
    let url = Url::parse_with_params(
        discovery["authorization_endpoint"]
            .as_str()
            .expect("an authorization endpoint"),
        [
            ("response_type", "code"),
            ("client_id", client_id(id).as_str()),
            ("redirect_uri", redirect_uri(id).as_str()),
            ("scope", "openid email profile"),
            ("state", state),
            ("nonce", nonce),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .expect("an authorize URL");
    (url.to_string(), verifier)
}

async fn discovery() -> Value {
    let url = format!("{}/.well-known/openid-configuration", provider().issuer);
    let discovery: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert_eq!(discovery["issuer"], provider().issuer);
    discovery
}

/// Signs `login` in to the client `id` with `nonce`, and returns the ID token the
/// provider issues for it (the code exchanged as that client would).
pub async fn id_token(id: &str, login: &str, nonce: &str) -> String {
    let state = "some-state";
    let (url, verifier) = authorize_url(id, state, nonce).await;
    let callback = provider().sign_in(&url, login).await;
    assert!(
        callback.starts_with(&format!("{}?", redirect_uri(id))),
        "{callback}"
    );
    let params = query(&callback);
    assert_eq!(params["state"], state);
    assert_eq!(params["iss"], provider().issuer);
    let tokens: Value = reqwest::Client::new()
        .post(discovery().await["token_endpoint"].as_str().unwrap())
        .basic_auth(client_id(id), Some(client_secret(id)))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", params["code"].as_str()),
            ("redirect_uri", redirect_uri(id).as_str()),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokens["id_token"]
        .as_str()
        .unwrap_or_else(|| panic!("an ID token in {tokens}"))
        .to_string()
}

/// Signs `login` in to the client `test` and returns the ID token's claims.
async fn id_token_claims(login: &str) -> Value {
    let nonce = "some-nonce";
    let id_token = id_token("test", login, nonce).await;
    let payload = id_token.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["nonce"], nonce);
    assert_eq!(claims["aud"], client_id("test"));
    assert_eq!(claims["iss"], provider().issuer);
    claims
}

#[tokio::test]
async fn the_test_provider_issues_id_tokens_with_email_claims() {
    let alice = id_token_claims("alice@example.com").await;
    assert_eq!(alice["sub"], "alice@example.com");
    assert_eq!(alice["email"], "alice@example.com");
    assert_eq!(alice["email_verified"], true);
    assert_eq!(alice["name"], "Person alice");

    let bob = id_token_claims("unverified:bob@example.com").await;
    assert_eq!(bob["sub"], "unverified:bob@example.com");
    assert_eq!(bob["email"], "bob@example.com");
    assert_eq!(bob["email_verified"], false);
}

#[tokio::test]
async fn cancelling_at_the_test_provider_denies_access() {
    let (url, _) = authorize_url("test", "cancelled", "n").await;
    let callback = provider().cancel(&url).await;
    let params = query(&callback);
    assert_eq!(params["error"], "access_denied", "{callback}");
    assert_eq!(params["state"], "cancelled");
}

#[tokio::test]
async fn an_extra_provider_runs_on_its_port_until_dropped() {
    let port = free_port();
    let env = env_for(&issuer_at(port), &["test", "public"]);
    let env: HashMap<_, _> = env.into_iter().collect();
    assert_eq!(env["OIDC_PROVIDERS"], "test,public");
    assert_eq!(env["OIDC_TEST_CLIENT_SECRET"], "test-secret");
    assert!(!env.contains_key("OIDC_PUBLIC_CLIENT_SECRET"));
    let shared = provider().env(&["ed"]);
    assert!(shared.contains(&("OIDC_ED_NAME".to_string(), "Test ed".to_string())));

    let extra = start_extra(port);
    assert_eq!(env["OIDC_TEST_ISSUER"], extra.issuer());
    let url = format!("{}/.well-known/openid-configuration", extra.issuer());
    let discovery: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert_eq!(discovery["issuer"], extra.issuer());
    drop(extra);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}
