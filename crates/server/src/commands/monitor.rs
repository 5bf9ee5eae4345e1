//! `rtcroom monitor`: watch services, restart what died, mail alerts (`ops::monitor`).

use crate::config::Config;
use crate::ops::{log, mail, monitor};
use std::path::PathBuf;

pub fn run(config: Option<PathBuf>, rounds: Option<u64>) -> anyhow::Result<()> {
    let cfg = Config::load(config.as_deref())?;
    let _log = log::init(&cfg.log.format, &cfg.log.level);
    let runtime = super::small_runtime()?;
    let mailer = mail::Mailer::from_config(&cfg.smtp)?;
    let host = super::hostname();
    runtime.block_on(async {
        tokio::select! {
            r = monitor::run(cfg.monitor.clone(), mailer, &cfg.alerts, host, rounds) => r,
            () = super::shutdown_signal() => Ok(()),
        }
    })
}
