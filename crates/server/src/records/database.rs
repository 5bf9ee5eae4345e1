//! The call-record database of `[database]`: connected and migrated by [`open`], the only
//! maker of a `Store` in the binary.

use super::RecordsOff;
use crate::config::{DatabaseSection, redact_url};
use anyhow::Context;
use rtcroom_store::{Schema, Store, StoreOptions};
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
                redact_url(&url)
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
    crate::config::create_data_dir(data_dir)?;
    let url = db.url(data_dir);
    let opts = StoreOptions {
        max_connections: db.max_connections.max(1),
        ..StoreOptions::default()
    };
    let store = Store::connect(&url, &opts).await.with_context(|| {
        format!(
            "cannot open the call-record database ([database] url {})",
            redact_url(&url)
        )
    })?;
    Ok((store, url))
}

fn migrate_failed(url: &str) -> String {
    format!(
        "cannot migrate the call-record database at {}: is it up, and may this user create tables?",
        redact_url(url)
    )
}

/// Connect to the call records to read them, changing nothing: no file, folder or table is
/// created and no migration runs. A database that is missing, unreachable, not migrated or
/// migrated by an older version is an error that says what to do.
pub async fn open_existing(db: &DatabaseSection, data_dir: &FsPath) -> anyhow::Result<Store> {
    if db.is_off() {
        return Err(RecordsOff.into());
    }
    let url = db.url(data_dir);
    let shown = redact_url(&url);
    if let Some(file) = db.sqlite_file(data_dir)
        && !file.exists()
    {
        anyhow::bail!(
            "there is no call-record database at {} ([database] url {shown}): is this the \
             server's configuration? Pass it with --config FILE (or RTCROOM_CONFIG=FILE); a \
             relative data_dir is taken from the configuration file's folder. The server \
             creates the database at its first start (or run `rtcroom migrate`)",
            file.display()
        );
    }
    let opts = StoreOptions {
        max_connections: db.max_connections.max(1),
        create_if_missing: false,
        ..StoreOptions::default()
    };
    let store = Store::connect(&url, &opts)
        .await
        .with_context(|| format!("cannot open the call-record database {shown}"))?;
    let schema = store.schema().await.with_context(|| {
        format!(
            "cannot reach the call-record database {shown}: is it up, and are [database] url and \
             its user right?"
        )
    });
    let schema = match schema {
        Ok(s) => s,
        Err(e) => {
            store.close().await;
            return Err(e);
        }
    };
    let problem = match schema {
        Schema::Current => return Ok(store),
        Schema::Missing => format!(
            "the database {shown} has no call-record tables: is [database] url the server's? \
             The server creates them at start (or run `rtcroom migrate`)"
        ),
        Schema::Behind { applied, latest } => format!(
            "the call-record tables of {shown} are at migration {applied} of {latest}: run \
             `rtcroom migrate` with the server's configuration (or start the new server) first"
        ),
    };
    store.close().await;
    anyhow::bail!(problem)
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
}
