//! `rtcroom check-config`: print the effective configuration.

use crate::config::Config;
use std::path::PathBuf;

pub fn run(config: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = Config::load(config.as_deref())?;
    println!("{cfg:#?}");
    if cfg.database.is_off() {
        println!(
            "{}: `serve` opens no database and writes no record; `migrate`, `records` and `report` exit with status 2",
            crate::records::OFF_MESSAGE
        );
    }
    Ok(())
}
