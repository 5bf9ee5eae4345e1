//! `rtcroom records ...`: call records as JSON (a member's history, one session, a day).

use super::cli::RecordsQuery;
use crate::config::Config;
use std::path::PathBuf;

pub fn run(query: RecordsQuery, config: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = Config::load(config.as_deref())?;
    let runtime = super::small_runtime()?;
    runtime.block_on(async {
        let store = crate::records::open(&cfg.database, &cfg.server.data_dir).await?;
        let json = match query {
            RecordsQuery::Member { app, uid, limit } => {
                serde_json::to_string_pretty(&store.member_sessions(&app, &uid, limit).await?)?
            }
            RecordsQuery::Session { id } => match store.session(&id).await? {
                Some(s) => serde_json::to_string_pretty(&s)?,
                None => anyhow::bail!("no session {id}"),
            },
            RecordsQuery::Day { date } => {
                serde_json::to_string_pretty(&store.day_sub_sessions(date).collect().await?)?
            }
        };
        println!("{json}");
        store.close().await;
        Ok(())
    })
}
