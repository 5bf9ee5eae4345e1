//! The operations sections: `[smtp]` (mail), `[alerts]` (who gets alert mails) and
//! `[monitor]` (what `rtcroom monitor` watches).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSection {
    /// The SMTP server; empty disables mail.
    pub url: String,
    /// The sender of every mail.
    pub from: String,
    /// Attempts per mail before it is given up (and logged as an error).
    pub attempts: u32,
}

impl Default for SmtpSection {
    fn default() -> Self {
        Self {
            url: String::new(),
            from: "rtcroom <rtcroom@localhost>".into(),
            attempts: 5,
        }
    }
}

/// The alert settings shared by the monitor and the room server's own alerts.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsSection {
    /// Who gets alert mails.
    pub recipients: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorSection {
    /// Seconds between two rounds of probes.
    pub interval_secs: u64,
    /// Consecutive failed probes before a target counts as down.
    pub failures_before_down: u32,
    /// While a target stays down, its restart command is run again this often.
    pub restart_every_secs: u64,
    /// At most this many alert mails (down and recovery alike) per target per hour;
    /// transitions beyond that are counted and mentioned in the next mail. A recovery is
    /// always mailed when its outage was.
    pub max_mails_per_hour: u32,
    pub targets: Vec<Target>,
}

impl Default for MonitorSection {
    fn default() -> Self {
        Self {
            interval_secs: 10,
            failures_before_down: 2,
            restart_every_secs: 60,
            max_mails_per_hour: 6,
            targets: Vec::new(),
        }
    }
}

/// One thing to watch. Exactly one of `http`, `tcp`, `pidfile`, `process` is set.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub name: String,
    /// An `http://host:port/path` that must answer 2xx.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// A `host:port` that must accept a TCP connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<String>,
    /// A pid file whose process must be alive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pidfile: Option<PathBuf>,
    /// A process name (as in `/proc/PID/comm`) of which one must be running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    /// A shell command that restarts the target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
}

impl Target {
    pub fn check(&self) -> anyhow::Result<()> {
        let kinds = [
            self.http.is_some(),
            self.tcp.is_some(),
            self.pidfile.is_some(),
            self.process.is_some(),
        ];
        let n = kinds.iter().filter(|k| **k).count();
        anyhow::ensure!(
            n == 1,
            "monitor target {:?} must have exactly one of http, tcp, pidfile, process",
            self.name
        );
        if let Some(url) = &self.http {
            anyhow::ensure!(
                url.starts_with("http://"),
                "monitor target {:?}: only http:// health URLs are probed (probe the local port)",
                self.name
            );
        }
        Ok(())
    }
}
