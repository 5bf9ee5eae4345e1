//! The call-record database of `[database]`: connected and migrated by [`open`], the only
//! maker of a `Store` in the binary.

use super::RecordsOff;
use crate::config::DatabaseSection;
use anyhow::Context;
use rtcroom_store::{Store, StoreOptions};
use std::path::Path as FsPath;

/// Connect and apply the migrations; [`RecordsOff`] when records are off.
pub async fn open(db: &DatabaseSection, data_dir: &FsPath) -> anyhow::Result<Store> {
    let (store, url) = connect(db, data_dir).await?;
    store
        .migrate()
        .await
        .with_context(|| migrate_failed(&url))?;
    Ok(store)
}

/// [`open`] for `serve`, which must start while the database is down: a database that cannot
/// be reached is not an error then. The store comes back with `false` (not migrated), and the
/// record writer migrates it when it answers; meanwhile records wait in the spool. A
/// database that answers and refuses (rights, an unknown database) is still an error.
pub async fn open_or_defer(
    db: &DatabaseSection,
    data_dir: &FsPath,
) -> anyhow::Result<(Store, bool)> {
    let (store, url) = connect(db, data_dir).await?;
    match store.migrate().await {
        Ok(()) => Ok((store, true)),
        Err(e) if e.is_unavailable() => {
            tracing::error!(
                critical = true,
                "the call-record database at {} cannot be reached ({e}); serving anyway: records are kept in the spool, and the migrations run and the records are written when it answers",
                redact(&url)
            );
            Ok((store, false))
        }
        Err(e) => Err(anyhow::Error::from(e).context(migrate_failed(&url))),
    }
}

/// The pool (MySQL and PostgreSQL connect lazily, so this does not reach the database) and
/// the URL it was made from.
async fn connect(db: &DatabaseSection, data_dir: &FsPath) -> anyhow::Result<(Store, String)> {
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
    Ok((store, url))
}

fn migrate_failed(url: &str) -> String {
    format!(
        "cannot migrate the call-record database at {}: is it up, and may this user create tables?",
        redact(url)
    )
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
