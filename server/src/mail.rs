//! Outgoing mail: SMTP through lettre, or a backend that writes each message in full to the
//! log (development, or `SMTP_URL=log`; see [`MailTransport`]).
//!
//! A message is never dropped silently. [`Mailer::queue`] sends in the background (so a
//! request never waits on, or reveals timing through, the mail server), retries a failed
//! send, and logs an error naming the recipient and subject when it finally gives up.
//! Shutdown waits for messages still in flight ([`Mailer::flush`]).

use crate::config::{MailTransport, Settings};
use lettre::{
    message::{header::ContentType, Mailbox},
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use secrecy::ExposeSecret;
use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};
use tokio::sync::Notify;
use tracing::Instrument;

/// One plain-text message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("the recipient {0:?} is not a deliverable address")]
    Recipient(String),
    #[error("cannot build the message: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
}

enum Backend {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Log,
}

/// Waits between attempts of a failed send; one more attempt than delays.
const RETRY_DELAYS: [Duration; 2] = [Duration::from_secs(2), Duration::from_secs(10)];
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a queued message can take, all attempts and delays included: what shutdown
/// waits for at most.
pub const LONGEST_SEND: Duration = Duration::from_secs(
    SMTP_TIMEOUT.as_secs() * (RETRY_DELAYS.len() as u64 + 1)
        + RETRY_DELAYS[0].as_secs()
        + RETRY_DELAYS[1].as_secs(),
);

#[derive(Clone)]
pub struct Mailer {
    backend: Arc<Backend>,
    from: Mailbox,
    in_flight: Arc<InFlight>,
}

#[derive(Default)]
struct InFlight {
    count: AtomicUsize,
    done: Notify,
}

impl Mailer {
    /// The backend the settings name (their `SMTP_URL` was checked when they were read).
    pub fn from_settings(settings: &Settings) -> Result<Mailer, MailError> {
        let backend = match &settings.mail.transport {
            MailTransport::Smtp(url) => Backend::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build(),
            ),
            MailTransport::Log => {
                tracing::warn!("mail is written to the log, not sent (SMTP_URL unset or log)");
                Backend::Log
            }
        };
        Ok(Mailer {
            backend: Arc::new(backend),
            from: settings.mail.from.clone(),
            in_flight: Arc::default(),
        })
    }

    /// Sends `email` in the background, with retries; failures are logged, never lost
    /// without a trace.
    pub fn queue(&self, email: Email) {
        self.compose_and_queue(async move { Ok::<_, std::convert::Infallible>(Some(email)) });
    }

    /// Runs `compose` in the background and sends the message it makes, if any, as `queue`
    /// does; for work that must not delay the answer (or show in its timing). Shutdown
    /// waits for it too.
    pub fn compose_and_queue<E: std::fmt::Display + Send + 'static>(
        &self,
        compose: impl std::future::Future<Output = Result<Option<Email>, E>> + Send + 'static,
    ) {
        self.in_flight.count.fetch_add(1, Ordering::SeqCst);
        let mailer = self.clone();
        tokio::spawn(
            async move {
                match compose.await {
                    Ok(Some(email)) => mailer.send_with_retries(&email).await,
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, "cannot compose a message"),
                }
                if mailer.in_flight.count.fetch_sub(1, Ordering::SeqCst) == 1 {
                    mailer.in_flight.done.notify_waiters();
                }
            }
            // Its lines (a message retried, or given up) name the request that queued it.
            .in_current_span(),
        );
    }

    async fn send_with_retries(&self, email: &Email) {
        let mut attempt = 0;
        loop {
            match self.send(email).await {
                Ok(()) => return,
                Err(e) if attempt < RETRY_DELAYS.len() && !matches!(e, MailError::Recipient(_)) => {
                    tracing::warn!(to = %email.to, subject = %email.subject, error = %e, "mail not sent yet; retrying");
                    tokio::time::sleep(RETRY_DELAYS[attempt]).await;
                    attempt += 1;
                }
                Err(e) => {
                    tracing::error!(to = %email.to, subject = %email.subject, error = %e, "mail could not be sent");
                    return;
                }
            }
        }
    }

    /// Sends now, once.
    pub async fn send(&self, email: &Email) -> Result<(), MailError> {
        match &*self.backend {
            Backend::Log => {
                tracing::info!(
                    to = %email.to,
                    subject = %email.subject,
                    "mail (log backend), not sent:\n{}",
                    email.body
                );
                Ok(())
            }
            Backend::Smtp(transport) => {
                let to: Mailbox = email
                    .to
                    .parse()
                    .map_err(|_| MailError::Recipient(email.to.clone()))?;
                let message = Message::builder()
                    .from(self.from.clone())
                    .to(to)
                    .subject(&email.subject)
                    .header(ContentType::TEXT_PLAIN)
                    .body(email.body.clone())?;
                transport.send(message).await?;
                tracing::info!(to = %email.to, subject = %email.subject, "mail sent");
                Ok(())
            }
        }
    }

    /// Waits (at most `limit`) until every queued message was sent or given up on.
    pub async fn flush(&self, limit: Duration) {
        let wait = async {
            loop {
                let done = self.in_flight.done.notified();
                if self.in_flight.count.load(Ordering::SeqCst) == 0 {
                    return;
                }
                done.await;
            }
        };
        if tokio::time::timeout(limit, wait).await.is_err() {
            tracing::error!(
                messages = self.in_flight.count.load(Ordering::SeqCst),
                "shutting down with mail still unsent"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailer(smtp_url: Option<&str>) -> Mailer {
        mailer_with(&[], smtp_url)
    }

    fn mailer_with(vars: &[(&str, &str)], smtp_url: Option<&str>) -> Mailer {
        let settings = Settings::from_lookup(|name| match name {
            "SMTP_URL" => smtp_url.map(str::to_string),
            _ => vars
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string()),
        })
        .unwrap();
        Mailer::from_settings(&settings).unwrap()
    }

    #[tokio::test]
    async fn the_backend_follows_the_settings() {
        assert!(matches!(*mailer(None).backend, Backend::Log));
        let public = [("PUBLIC_URL", "https://auth.example.com")];
        assert!(matches!(
            *mailer_with(&public, Some("log")).backend,
            Backend::Log
        ));
        assert!(matches!(
            *mailer_with(&public, Some("smtps://mail.example.com")).backend,
            Backend::Smtp(_)
        ));
    }

    fn email(to: &str) -> Email {
        Email {
            to: to.into(),
            subject: "Hello".into(),
            body: "Body".into(),
        }
    }

    #[tokio::test]
    async fn without_smtp_url_mail_goes_to_the_log() {
        assert!(mailer(None).send(&email("a@example.com")).await.is_ok());
    }

    #[tokio::test]
    async fn a_failed_send_is_an_error_not_silence() {
        // Nothing listens on port 1: the SMTP backend says so.
        let smtp = mailer(Some("smtp://127.0.0.1:1"));
        assert!(matches!(
            smtp.send(&email("a@example.com")).await,
            Err(MailError::Smtp(_))
        ));
        assert!(matches!(
            smtp.send(&email("not an address")).await,
            Err(MailError::Recipient(_))
        ));
    }

    #[tokio::test]
    async fn flush_returns_once_nothing_is_in_flight() {
        let log = mailer(None);
        log.queue(email("a@example.com"));
        log.flush(Duration::from_secs(5)).await;
        assert_eq!(log.in_flight.count.load(Ordering::SeqCst), 0);
    }
}
