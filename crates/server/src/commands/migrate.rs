//! `rtcroom migrate`: create or update the call-record tables.

use crate::config::Config;
use std::path::PathBuf;

pub fn run(config: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = Config::load(config.as_deref())?;
    let runtime = super::small_runtime()?;
    runtime.block_on(async {
        let store = crate::records::open(&cfg.database, &cfg.server.data_dir).await?;
        let url = crate::config::redact_url(&cfg.database.url(&cfg.server.data_dir));
        store.close().await;
        super::print(&format!(
            "the call-record tables are up to date ({:?}, {url})\n",
            store.backend()
        ))
    })
}
