//! The room server's own alerts (an ICE server left rotation, the record store is down), as
//! data: whoever notices a problem builds an [`Alert`] and hands it to [`Alerts::raise`],
//! which never waits; one task mails them.
//!
//! `raise` never blocks and never queues beyond its bound: when the mailer falls behind,
//! further alerts are only logged (they were logged when raised in any case).

use super::mail::{Mailer, notify};
use lettre::message::Mailbox;
use tokio::sync::mpsc;

/// One alert mail: its subject and body (the host is added when it is sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub subject: String,
    pub body: String,
}

/// The handle alerts are raised on. The default handle has no mailer and discards them.
#[derive(Debug, Clone, Default)]
pub struct Alerts {
    tx: Option<mpsc::Sender<Alert>>,
}

impl Alerts {
    /// Mail alerts to `to` through `mailer`, from a task of their own.
    pub fn start(mailer: Mailer, to: Vec<Mailbox>, host: String) -> Self {
        let (tx, mut rx) = mpsc::channel::<Alert>(64);
        tokio::spawn(async move {
            while let Some(Alert { subject, body }) = rx.recv().await {
                let body = format!("{body}\nSent by the rtcroom room server on {host}.\n");
                notify(Some(&mailer), &to, &subject, body).await;
            }
        });
        Self { tx: Some(tx) }
    }

    /// Queue an alert mail; a no-op without a mailer.
    pub fn raise(&self, alert: Alert) {
        if let Some(tx) = &self.tx
            && tx.try_send(alert).is_err()
        {
            tracing::warn!("alert mail queue full; the alert is only in the log");
        }
    }
}
