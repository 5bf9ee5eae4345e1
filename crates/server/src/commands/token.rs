//! `rtcroom token`: mint a join token as an app backend would.

use crate::auth::Apps;
use crate::config::Config;
use anyhow::Context;
use std::path::PathBuf;

pub fn run(app: &str, uid: Option<&str>, config: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = Config::load(config.as_deref())?;
    let apps = Apps::new(cfg.server_apps()?, cfg.auth.token_ttl_secs);
    let found = apps
        .get(app)
        .with_context(|| format!("no app {app}: see `rtcroom apps list`"))?;
    if found.mode == crate::auth::AppMode::Backend && uid.is_none() {
        anyhow::bail!("app {app} is in backend mode: its tokens must name the user; give --uid");
    }
    let (token, _) = apps
        .mint(found, uid, None, crate::clock::now())
        .with_context(|| format!("app {app} has no key"))?;
    super::print(&format!("{token}\n"))
}
