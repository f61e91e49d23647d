//! A real SMTP server for the tests: maildev (from end2end's npm packages), started once
//! per test binary on loopback and read through its HTTP API. It stops by itself when this
//! process ends: it exits when its standard input (a pipe held here) closes.

use serde::Deserialize;
use std::{
    net::{TcpListener, TcpStream},
    path::Path,
    process::{Child, ChildStdin, Command, Stdio},
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

pub struct MailServer {
    pub smtp_url: String,
    web_url: String,
    _process: Mutex<(Child, ChildStdin)>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn wait_for(port: u16) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "maildev did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The shared maildev of this test binary.
pub fn mail_server() -> &'static MailServer {
    static SERVER: OnceLock<MailServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let end2end = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../end2end");
        assert!(
            end2end.join("node_modules/maildev").exists(),
            "maildev is not installed: run `cargo xtask setup` (npm ci in end2end)"
        );
        let (smtp, web) = loop {
            let (a, b) = (free_port(), free_port());
            if a != b {
                break (a, b);
            }
        };
        let mut child = Command::new("node")
            .current_dir(&end2end)
            .args(["scripts/maildev.cjs", &smtp.to_string(), &web.to_string()])
            .arg("--exit-with-stdin")
            .stdin(Stdio::piped())
            .spawn()
            .expect("start node scripts/maildev.cjs");
        let stdin = child.stdin.take().expect("piped stdin");
        wait_for(smtp);
        wait_for(web);
        MailServer {
            smtp_url: format!("smtp://127.0.0.1:{smtp}"),
            web_url: format!("http://127.0.0.1:{web}"),
            _process: Mutex::new((child, stdin)),
        }
    })
}

#[derive(Clone, Debug, Deserialize)]
pub struct Mail {
    pub subject: String,
    pub text: String,
    pub to: Vec<Address>,
    pub from: Vec<Address>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Address {
    pub address: String,
}

impl MailServer {
    /// Every message received for `to`, oldest first.
    pub async fn messages_to(&self, to: &str) -> Vec<Mail> {
        let all: Vec<Mail> = reqwest::get(format!("{}/email", self.web_url))
            .await
            .expect("maildev answers")
            .json()
            .await
            .expect("maildev's JSON");
        all.into_iter()
            .filter(|m| m.to.iter().any(|a| a.address.eq_ignore_ascii_case(to)))
            .collect()
    }

    /// Waits until `to` has received `count` messages and returns the `count`th.
    pub async fn nth_message_to(&self, to: &str, count: usize) -> Mail {
        self.nth_matching(to, count, |_| true).await
    }

    /// Waits for the `count`th message to `to` whose subject is `subject` (messages queued
    /// at the same moment may arrive in either order).
    pub async fn nth_with_subject(&self, to: &str, subject: &str, count: usize) -> Mail {
        self.nth_matching(to, count, |m| m.subject == subject).await
    }

    async fn nth_matching(&self, to: &str, count: usize, wanted: impl Fn(&Mail) -> bool) -> Mail {
        let started = Instant::now();
        loop {
            let messages: Vec<Mail> = self
                .messages_to(to)
                .await
                .into_iter()
                .filter(|m| wanted(m))
                .collect();
            if messages.len() >= count {
                return messages[count - 1].clone();
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no message #{count} for {to} (got {})",
                messages.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The 6-digit code of a verification message (in its body, never in its subject, which
/// servers log).
pub fn code_in(mail: &Mail) -> String {
    assert_eq!(mail.subject, "Your verification code");
    let (_, rest) = mail
        .text
        .split_once("Your verification code is ")
        .unwrap_or_else(|| panic!("a code in {:?}", mail.text));
    let code: String = rest.chars().take_while(char::is_ascii_digit).collect();
    assert_eq!(code.len(), 6, "a code in {:?}", mail.text);
    code
}

/// The token of a password reset link (`…/reset-password#token=…`).
pub fn reset_token_in(mail: &Mail) -> String {
    let (_, rest) = mail
        .text
        .split_once("/reset-password#token=")
        .unwrap_or_else(|| panic!("a reset link in {:?}", mail.text));
    rest.split_whitespace().next().expect("a token").to_string()
}
