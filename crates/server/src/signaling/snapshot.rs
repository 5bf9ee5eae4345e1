//! The rooms kept across a restart: `data_dir/rooms.snapshot.json`, written at SIGTERM after
//! the engine's `restart`, read once at the next start and restored before any connection
//! is accepted.
//!
//! The file holds the engine's [`Snapshot`] under a header (what it is, its format version,
//! when it was written, by which server version). It holds resume keys, so it is written
//! readable by the server's user only, and it is removed once read.

use rtcroom_core::{Millis, Snapshot};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file's name in `data_dir`.
pub const FILE: &str = "rooms.snapshot.json";
/// What the header's `format` says: a file without it is not ours.
const FORMAT: &str = "rtcroom rooms snapshot";
/// The header's version; the engine's snapshot carries its own as well.
const FORMAT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SnapshotFile {
    format: String,
    format_version: u32,
    /// Wall time of writing, Unix ms (what the age check reads).
    written_at_ms: u64,
    /// The same as RFC 3339, for people.
    written_at: String,
    /// The version of the server that wrote it.
    server_version: String,
    snapshot: Snapshot,
}

/// Where the snapshot is kept.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

/// Write `snapshot` atomically: a temporary file, synced, renamed over the final name.
pub fn write(data_dir: &Path, snapshot: Snapshot, now: Millis) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create [server] data_dir {}", data_dir.display()))?;
    let file = SnapshotFile {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        written_at_ms: now.0,
        written_at: i64::try_from(now.0)
            .ok()
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default(),
        server_version: env!("CARGO_PKG_VERSION").into(),
        snapshot,
    };
    let temp = data_dir.join(format!("{FILE}.tmp"));
    let target = path(data_dir);
    let result = (|| -> anyhow::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let f = options
            .open(&temp)
            .with_context(|| format!("cannot create {}", temp.display()))?;
        let mut out = std::io::BufWriter::new(f);
        serde_json::to_writer(&mut out, &file).context("cannot encode the snapshot")?;
        out.flush()
            .with_context(|| format!("cannot write {}", temp.display()))?;
        out.get_ref()
            .sync_all()
            .with_context(|| format!("cannot sync {}", temp.display()))?;
        std::fs::rename(&temp, &target)
            .with_context(|| format!("cannot rename {} to {}", temp.display(), target.display()))?;
        // The rename itself is durable once the directory is synced.
        if let Ok(dir) = std::fs::File::open(data_dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// The snapshot left by the previous run, if there is one and it is fresh: written less than
/// `max_age_ms` ago. The file is used once: it is removed when it is taken, and renamed to
/// `rooms.snapshot.json.ignored` (for a look) when it is not. Every reason to ignore it is
/// logged in one line; nothing here fails the start.
pub fn take(data_dir: &Path, now: Millis, max_age_ms: u64) -> Option<Snapshot> {
    let file = path(data_dir);
    let text = match std::fs::read(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            ignore(&file, &format!("it cannot be read: {e}"));
            return None;
        }
    };
    let parsed: SnapshotFile = match serde_json::from_slice(&text) {
        Ok(p) => p,
        Err(e) => {
            ignore(&file, &format!("it is not a rooms snapshot: {e}"));
            return None;
        }
    };
    if parsed.format != FORMAT || parsed.format_version != FORMAT_VERSION {
        ignore(
            &file,
            &format!(
                "it is a {:?} of format version {}, this server reads {FORMAT:?} version {FORMAT_VERSION}",
                parsed.format, parsed.format_version
            ),
        );
        return None;
    }
    let age = now.0.saturating_sub(parsed.written_at_ms);
    if age > max_age_ms {
        ignore(
            &file,
            &format!(
                "it was written {} s ago ({}), longer than the heartbeat timeout of {} s: its members cannot resume",
                age / 1000,
                parsed.written_at,
                max_age_ms / 1000
            ),
        );
        return None;
    }
    if let Err(e) = std::fs::remove_file(&file) {
        ignore(
            &file,
            &format!("it cannot be removed, so it would be used twice: {e}"),
        );
        return None;
    }
    Some(parsed.snapshot)
}

/// Log why the snapshot `file` is not restored and move it out of the way.
pub fn ignore(file: &Path, why: &str) {
    let aside = file.with_extension("json.ignored");
    let moved = std::fs::rename(file, &aside).is_ok();
    tracing::warn!(
        file = %file.display(),
        moved_to = %if moved { aside.display().to_string() } else { String::new() },
        "the rooms snapshot is ignored and nobody is restored: {why}"
    );
}
