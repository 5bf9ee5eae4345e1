//! The call-record database of `[database]`: connected and migrated by [`open`], the only
//! maker of a `Store` in the binary.

use super::RecordsOff;
use crate::config::DatabaseSection;
use anyhow::Context;
use rtcroom_store::{Store, StoreOptions};
use std::path::Path as FsPath;

/// Connect and apply the migrations; [`RecordsOff`] when records are off.
pub async fn open(db: &DatabaseSection, data_dir: &FsPath) -> anyhow::Result<Store> {
    if db.is_off() {
        return Err(RecordsOff.into());
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create [server] data_dir {}", data_dir.display()))?;
    let url = db.url(data_dir);
    let opts = StoreOptions {
        max_connections: db.max_connections.max(1),
        ..StoreOptions::default()
    };
    let store = Store::connect(&url, &opts).await.with_context(|| {
        format!(
            "cannot open the call-record database ([database] url {})",
            redact(&url)
        )
    })?;
    store.migrate().await.with_context(|| {
        format!("cannot migrate the call-record database at {}: is it up, and may this user create tables?", redact(&url))
    })?;
    Ok(store)
}

/// A URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::DatabaseSection;

    #[tokio::test]
    async fn nothing_opens_a_database_that_is_off() {
        let dir = std::env::temp_dir().join(format!("rtcroom-off-{}", std::process::id()));
        let db = DatabaseSection {
            url: "off".into(),
            ..DatabaseSection::default()
        };
        let e = super::open(&db, &dir).await.unwrap_err();
        assert!(e.is::<super::super::RecordsOff>(), "{e:#}");
        assert!(!dir.exists(), "not even the data directory is created");
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            super::redact("mysql://root:pw@127.0.0.1/db"),
            "mysql://root:***@127.0.0.1/db"
        );
        assert_eq!(super::redact("sqlite://data/x.db"), "sqlite://data/x.db");
    }
}
