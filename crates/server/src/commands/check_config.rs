//! `rtcroom check-config`: run every check `serve` runs, then print the effective
//! configuration (file, environment and defaults) as TOML with every secret shown as `***`.

use crate::config::Config;
use std::path::PathBuf;

pub fn run(config: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = Config::load(config.as_deref())?;
    super::preflight(&cfg)?;
    let mut text = match &config {
        Some(file) => format!(
            "# The effective configuration of {} (file, RTCROOM_* variables, defaults).\n",
            file.display()
        ),
        None => "# The effective configuration (no file: RTCROOM_* variables and defaults).\n"
            .to_owned(),
    };
    text.push_str("# Secrets are shown as \"***\"; relative paths are resolved.\n");
    if cfg.apps.is_empty() {
        text.push_str(&format!(
            "# No [[apps]]: the demo app 10000 (localhost, 127.0.0.1) signs with the secret in {}.\n",
            cfg.server.data_dir.join("demo-app.secret").display()
        ));
    }
    if cfg.database.is_off() {
        text.push_str(&format!(
            "# {}: `serve` opens no database and writes no record; `migrate`, `records` and `report` exit with status 2.\n",
            crate::records::OFF_MESSAGE
        ));
    }
    text.push('\n');
    text.push_str(&crate::config::to_redacted_toml(&cfg)?);
    super::print(&text)
}
