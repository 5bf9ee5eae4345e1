//! Sending e-mail over SMTP (alerts, daily reports), with retries.
//!
//! `[smtp] url` takes lettre's URL form: `smtp://host:25` (plain, or STARTTLS when offered),
//! `smtp://user:pass@host:587?tls=required` (STARTTLS required), `smtps://user:pass@host:465`
//! (implicit TLS). An empty URL means no mail is sent, and whoever wanted to send one logs
//! that instead.

use crate::config::SmtpSection;
use anyhow::Context;
use lettre::message::{Mailbox, Message, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::time::Duration;

/// A configured SMTP sender.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    pub from: Mailbox,
    attempts: u32,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// The mailer of `[smtp]`, or `None` when no URL is configured.
    pub fn from_config(smtp: &SmtpSection) -> anyhow::Result<Option<Self>> {
        if smtp.url.trim().is_empty() {
            return Ok(None);
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp.url.trim())
            .context("[smtp] url is not a valid SMTP URL (e.g. smtp://host:25 or smtps://user:pass@host:465)")?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        let from: Mailbox = smtp
            .from
            .parse()
            .with_context(|| format!("[smtp] from {:?} is not a mail address", smtp.from))?;
        Ok(Some(Self {
            transport,
            from,
            attempts: smtp.attempts.max(1),
        }))
    }

    /// A plain-text message from the configured sender.
    pub fn text(&self, to: &[Mailbox], subject: &str, body: String) -> anyhow::Result<Message> {
        let mut b = Message::builder().from(self.from.clone()).subject(subject);
        for t in to {
            b = b.to(t.clone());
        }
        b.header(ContentType::TEXT_PLAIN)
            .body(body)
            .context("cannot build the mail")
    }

    /// Send, retrying with a growing pause (1 s, 2 s, 4 s, …) before giving up.
    pub async fn send(&self, msg: &Message) -> anyhow::Result<()> {
        let mut pause = Duration::from_secs(1);
        let mut last = None;
        for attempt in 1..=self.attempts {
            match self.transport.send(msg.clone()).await {
                Ok(_) => return Ok(()),
                Err(e) => {
                    tracing::warn!(attempt, error = %e, "sending mail failed");
                    last = Some(e);
                    if attempt < self.attempts {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_secs(60));
                    }
                }
            }
        }
        Err(last.map_or_else(|| anyhow::anyhow!("no attempt made"), anyhow::Error::from))
            .context("the SMTP server did not take the mail")
    }
}

/// Parse mail addresses, saying which one is wrong.
pub fn mailboxes(addresses: &[String], what: &str) -> anyhow::Result<Vec<Mailbox>> {
    addresses
        .iter()
        .map(|a| {
            a.parse()
                .with_context(|| format!("{what}: {a:?} is not a mail address"))
        })
        .collect()
}

/// Send an alert mail, or log that it could not be sent.
pub async fn notify(
    mailer: Option<&Mailer>,
    to: &[lettre::message::Mailbox],
    subject: &str,
    body: String,
) {
    let Some(mailer) = mailer.filter(|_| !to.is_empty()) else {
        return;
    };
    let sent = async {
        let msg = mailer.text(to, subject, body)?;
        mailer.send(&msg).await
    }
    .await
    .context("alert mail");
    if let Err(e) = sent {
        tracing::error!(error = %format!("{e:#}"), subject, "could not send an alert mail");
    }
}
