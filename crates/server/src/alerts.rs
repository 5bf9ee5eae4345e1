//! The room server's own alerts (an ICE server left rotation, the record store is down):
//! raised from anywhere without waiting, mailed by one task.
//!
//! `raise` never blocks and never allocates a queue beyond its bound: when the mailer falls
//! behind, further alerts are only logged (they were logged when raised in any case).

use crate::mail::Mailer;
use lettre::message::Mailbox;
use std::sync::OnceLock;
use tokio::sync::mpsc;

static ALERTS: OnceLock<mpsc::Sender<(String, String)>> = OnceLock::new();

/// Queue an alert mail. A no-op until [`start`] ran (no mailer configured).
pub fn raise(subject: String, body: String) {
    if let Some(tx) = ALERTS.get()
        && tx.try_send((subject, body)).is_err()
    {
        tracing::warn!("alert mail queue full; the alert is only in the log");
    }
}

/// Mail alerts to `to` through `mailer`, in the background.
pub fn start(mailer: Mailer, to: Vec<Mailbox>, host: String) {
    let (tx, mut rx) = mpsc::channel::<(String, String)>(64);
    if ALERTS.set(tx).is_err() {
        return;
    }
    tokio::spawn(async move {
        while let Some((subject, body)) = rx.recv().await {
            let body = format!("{body}\nSent by the rtcroom room server on {host}.\n");
            crate::monitor::notify(Some(&mailer), &to, &subject, body).await;
        }
    });
}
