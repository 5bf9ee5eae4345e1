//! `rtcroom migrate`: create or update the call-record tables.

use crate::config::Config;
use std::path::PathBuf;

pub fn run(config: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = Config::load(config.as_deref())?;
    let runtime = super::small_runtime()?;
    runtime.block_on(async {
        let store = crate::records::open(&cfg.database, &cfg.server.data_dir).await?;
        println!(
            "the call-record tables are up to date ({:?})",
            store.backend()
        );
        store.close().await;
        Ok(())
    })
}
