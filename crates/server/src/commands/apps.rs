//! `rtcroom apps list`: the apps of the configuration, without their secrets.

use crate::auth::Apps;
use crate::config::Config;
use std::path::PathBuf;

pub fn list(config: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = Config::load(config.as_deref())?;
    let apps = Apps::new(cfg.server_apps()?, cfg.auth.token_ttl_secs);
    let mut text = String::new();
    for app in apps.list() {
        let kids: Vec<String> = app.all_keys().into_iter().map(|k| k.kid).collect();
        text.push_str(&format!(
            "{}\tkeys: {}\tdomains: {}\n",
            app.id,
            kids.join(","),
            app.domains.join(",")
        ));
    }
    super::print(&text)
}
