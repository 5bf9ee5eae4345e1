//! Operations: logs, metrics, alerts, mail and `rtcroom monitor`.
//!
//! Nothing here knows the room engine's state: `telemetry` turns the engine's events into log
//! lines, counters and alerts (as data), `log` carries log lines to stderr off the caller's
//! task, `metrics` holds the Prometheus registries (`cluster_metrics` those of `[cluster]`), `alerts` mails what is raised, `mail`
//! speaks SMTP, `monitor` watches other processes.

pub mod alerts;
pub mod cluster_metrics;
pub mod log;
pub mod mail;
pub mod metrics;
pub mod monitor;
pub mod telemetry;
