//! `rtcroom records ...`: call records as JSON (a member's history, one session, a day),
//! read from the server's database as it is (nothing is created or migrated).

use super::cli::RecordsQuery;
use crate::config::Config;
use std::path::PathBuf;

pub fn run(query: RecordsQuery, config: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = Config::load(config.as_deref())?;
    let runtime = super::small_runtime()?;
    runtime.block_on(async {
        let store = crate::records::open_existing(&cfg.database, &cfg.server.data_dir).await?;
        let json = answer(&store, query).await;
        store.close().await;
        super::print(&format!("{}\n", json?))
    })
}

/// The JSON answer to `query`.
async fn answer(store: &rtcroom_store::Store, query: RecordsQuery) -> anyhow::Result<String> {
    Ok(match query {
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
    })
}
