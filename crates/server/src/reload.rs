//! A value read from files and read again when they change: the TLS certificate and key
//! (`tls`), the GeoIP database (`geoip`).
//!
//! A change is a new modification time or size of any of the files. A new version that cannot
//! be read leaves the old value in use; it is tried again once the files change again.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

/// The modification time and size of one file, as last read.
type Stamp = (Option<SystemTime>, u64);

/// Reads the value from the files; the error says what to do.
type Reader<T> = Box<dyn Fn() -> Result<T, String> + Send + Sync>;

/// The value in use, and how to read it again.
pub struct Reloading<T> {
    files: Vec<PathBuf>,
    read: Reader<T>,
    current: RwLock<Arc<T>>,
    seen: Mutex<Vec<Stamp>>,
}

impl<T> std::fmt::Debug for Reloading<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloading")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> Reloading<T> {
    /// Read the value from `files` with `read` (which reads them itself).
    pub fn load(
        files: Vec<PathBuf>,
        read: impl Fn() -> Result<T, String> + Send + Sync + 'static,
    ) -> Result<Self, String> {
        let seen = stamps(&files);
        let value = read()?;
        Ok(Self {
            files,
            read: Box::new(read),
            current: RwLock::new(Arc::new(value)),
            seen: Mutex::new(seen),
        })
    }

    /// The value in use.
    pub fn current(&self) -> Arc<T> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Read the files again if they changed since they were last read. `Ok(true)`: the new
    /// value is in use; `Err`: it cannot be used and the old one stays.
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let now = stamps(&self.files);
        {
            let mut seen = self
                .seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *seen == now {
                return Ok(false);
            }
            *seen = now;
        }
        let value = (self.read)()?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(value);
        Ok(true)
    }

    /// Check the files every `every`, for as long as the server runs (reading on a blocking
    /// thread: a database file may be large). `reloaded` is logged when a new value is in use;
    /// `kept` ends the warning when the files cannot be used ("the ... loaded before stays in
    /// use until ...").
    pub async fn watch(self: Arc<Self>, every: Duration, reloaded: &str, kept: &str) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let me = self.clone();
            let done = tokio::task::spawn_blocking(move || me.reload_if_changed()).await;
            match done {
                Ok(Ok(false)) | Err(_) => {}
                Ok(Ok(true)) => tracing::info!(file = %self.files[0].display(), "{reloaded}"),
                Ok(Err(e)) => tracing::warn!("{e}; {kept}"),
            }
        }
    }
}

fn stamps(files: &[PathBuf]) -> Vec<Stamp> {
    files
        .iter()
        .map(|p| std::fs::metadata(p).map_or((None, 0), |m| (m.modified().ok(), m.len())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_is_read_again_and_an_unreadable_one_keeps_the_old_value() {
        let dir = std::env::temp_dir().join(format!("rtcroom-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("value");
        std::fs::write(&file, "1").unwrap();
        let path = file.clone();
        let value = Reloading::load(vec![file.clone()], move || {
            let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
            text.trim().parse::<u32>().map_err(|e| e.to_string())
        })
        .unwrap();
        assert_eq!(*value.current(), 1);
        assert_eq!(value.reload_if_changed(), Ok(false));

        std::fs::write(&file, "22").unwrap();
        assert_eq!(value.reload_if_changed(), Ok(true));
        assert_eq!(*value.current(), 22);

        std::fs::write(&file, "not a number").unwrap();
        assert!(value.reload_if_changed().is_err());
        assert_eq!(*value.current(), 22, "the old value stays");
        assert_eq!(
            value.reload_if_changed(),
            Ok(false),
            "tried again only on a change"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
