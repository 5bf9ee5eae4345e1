//! The write-ahead journal: every entry the writer accepts is appended here before it is
//! queued in memory, so that a crash of the process (`kill -9`, a panic, an OOM kill) loses
//! no record that was accepted.
//!
//! Files in the spool directory: `journal-N.jsonl`, N counting up, one line per entry in the
//! format of `line` (with the entry's sequence number). The intake thread appends each burst
//! with one `write` (the kernel keeps it through a crash of the process) and syncs it to
//! disk at most `sync_interval` later (what a crash of the machine can lose). A segment is
//! deleted once every entry in it is in the database or in the spool (fsynced there), which
//! the writer reports through [`Journal::release`] with its low-water mark: the lowest
//! sequence number still only in memory. The current segment is emptied the same way, and a
//! new one begins when it exceeds its size.
//!
//! At start, [`Journal::open`] puts what a previous run left into the spool, behind what was
//! spooled already and in queue order (see `Spool::replay`), then deletes the segments. This
//! module does blocking file IO: the writer calls it from its intake thread or a blocking
//! thread.

use crate::error::StoreError;
use crate::line::{self, Entry};
use crate::spool::Spool;
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub(crate) struct Journal {
    dir: PathBuf,
    /// Finished segments, oldest first: (number, highest sequence number in it).
    closed: VecDeque<(u64, u64)>,
    current: File,
    current_no: u64,
    current_len: u64,
    /// The highest sequence number written to the current segment.
    current_last: Option<u64>,
    segment_bytes: u64,
    /// Written since the last sync.
    dirty: bool,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

fn segment_path(dir: &Path, no: u64) -> PathBuf {
    dir.join(format!("journal-{no}.jsonl"))
}

/// The journal segments in `dir`, oldest first.
fn segments(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let mut found = Vec::new();
    for e in fs::read_dir(dir).map_err(io_err(dir))? {
        let name = e.map_err(io_err(dir))?.file_name();
        let no = name
            .to_str()
            .and_then(|n| n.strip_prefix("journal-"))
            .and_then(|n| n.strip_suffix(".jsonl"))
            .and_then(|n| n.parse::<u64>().ok());
        found.extend(no);
    }
    found.sort_unstable();
    Ok(found)
}

impl Journal {
    /// Replays the segments a previous run left into `spool`, deletes them, and starts a new
    /// segment. Returns the journal and the highest sequence number seen (in the journal or
    /// the spool), after which the new run numbers its entries.
    pub(crate) fn open(
        dir: &Path,
        spool: &mut Spool,
        segment_bytes: u64,
    ) -> Result<(Journal, u64), StoreError> {
        let found = segments(dir)?;
        let mut entries: Vec<Entry> = Vec::new();
        for &no in &found {
            let path = segment_path(dir, no);
            let file = File::open(&path).map_err(io_err(&path))?;
            let mut reader = BufReader::new(file);
            let mut buf = String::new();
            loop {
                buf.clear();
                let n = reader.read_line(&mut buf).map_err(io_err(&path))?;
                // A line without its newline was torn by the crash: it was never queued.
                if n == 0 || !buf.ends_with('\n') {
                    break;
                }
                match line::decode(buf.trim_end()) {
                    // Entries are numbered in order; anything else is a copy.
                    Ok(e) if entries.last().is_none_or(|l| l.seq < e.seq) => entries.push(e),
                    Ok(_) => {}
                    Err(err) => {
                        tracing::error!(error = %err, "unreadable line in the record journal, moved aside");
                        spool.reject_line(buf.trim_end(), &err.to_string())?;
                    }
                }
            }
        }
        if !entries.is_empty() {
            tracing::warn!(
                entries = entries.len(),
                "the previous run ended without writing its journal: replaying it"
            );
            spool.replay(&entries)?;
        }
        for &no in &found {
            let path = segment_path(dir, no);
            fs::remove_file(&path).map_err(io_err(&path))?;
        }
        let last = spool.last_seq().max(entries.last().map_or(0, |e| e.seq));
        let current_no = found.last().map_or(0, |n| n + 1);
        let path = segment_path(dir, current_no);
        let current = create(&path)?;
        Ok((
            Journal {
                dir: dir.to_owned(),
                closed: VecDeque::new(),
                current,
                current_no,
                current_len: 0,
                current_last: None,
                segment_bytes: segment_bytes.max(1),
                dirty: false,
            },
            last,
        ))
    }

    /// Appends `entries` (one `write`, no sync). On failure the segment is cut back to whole
    /// lines and the error returned; the entries are still queued by the caller, only not
    /// journaled.
    pub(crate) fn append(&mut self, entries: &[Entry]) -> Result<(), StoreError> {
        let Some(last) = entries.last() else {
            return Ok(());
        };
        if self.current_len >= self.segment_bytes {
            self.rotate()?;
        }
        let mut buf = String::new();
        for e in entries {
            line::encode_into(e, &mut buf);
            buf.push('\n');
        }
        if let Err(e) = self.current.write_all(buf.as_bytes()) {
            let _ = self.current.set_len(self.current_len);
            return Err(io_err(&segment_path(&self.dir, self.current_no))(e));
        }
        self.current_len += buf.len() as u64;
        self.current_last = Some(last.seq);
        self.dirty = true;
        Ok(())
    }

    /// A handle to sync outside the writer's lock, when something was written since the last.
    pub(crate) fn take_unsynced(&mut self) -> Option<File> {
        if !self.dirty {
            return None;
        }
        self.dirty = false;
        self.current.try_clone().ok()
    }

    /// Every entry numbered below `low` is in the database or the spool: deletes the
    /// segments that hold only such entries, and empties the current one if it does.
    pub(crate) fn release(&mut self, low: u64) {
        while let Some(&(no, last)) = self.closed.front() {
            if last >= low {
                break;
            }
            self.closed.pop_front();
            let path = segment_path(&self.dir, no);
            if let Err(e) = fs::remove_file(&path) {
                tracing::error!(error = %e, path = %path.display(), "cannot delete a journal segment");
            }
        }
        if self.closed.is_empty()
            && self.current_len > 0
            && self.current_last.is_some_and(|l| l < low)
        {
            match self.current.set_len(0) {
                Ok(()) => {
                    self.current_len = 0;
                    self.current_last = None;
                }
                Err(e) => tracing::error!(error = %e, "cannot empty the record journal"),
            }
        }
    }

    fn rotate(&mut self) -> Result<(), StoreError> {
        let next = self.current_no + 1;
        let path = segment_path(&self.dir, next);
        let file = create(&path)?;
        // The finished segment is synced now: the next sync only covers the new one.
        let _ = self.current.sync_data();
        if let Some(last) = self.current_last {
            self.closed.push_back((self.current_no, last));
        } else {
            let _ = fs::remove_file(segment_path(&self.dir, self.current_no));
        }
        self.current = file;
        self.current_no = next;
        self.current_len = 0;
        self.current_last = None;
        Ok(())
    }

    /// Deletes every segment: everything is in the database or the spool (clean shutdown).
    pub(crate) fn remove_all(&mut self) {
        self.release(u64::MAX);
        if self.current_len == 0 {
            let _ = fs::remove_file(segment_path(&self.dir, self.current_no));
        }
    }
}

fn create(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::Item;
    use rtcroom_core::Millis;

    fn entries(from: u64, n: u64) -> Vec<Entry> {
        (from..from + n)
            .map(|seq| Entry {
                seq,
                item: Item::Checkpoint(Millis(seq)),
            })
            .collect()
    }

    fn journal_files(dir: &Path) -> Vec<u64> {
        segments(dir).unwrap()
    }

    #[test]
    fn what_a_crash_leaves_is_replayed_into_the_spool_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        let (mut j, last) = Journal::open(dir.path(), &mut spool, 60).unwrap();
        assert_eq!(last, 0);
        j.append(&entries(1, 3)).unwrap();
        j.append(&entries(4, 3)).unwrap(); // the first segment is full: a second begins
        j.append(&entries(7, 1)).unwrap();
        assert_eq!(journal_files(dir.path()).len(), 3);
        // 1..=3 reached the database: their segment goes.
        j.release(4);
        assert_eq!(journal_files(dir.path()).len(), 2);
        // A crash: the journal is not released any further, and a torn line is at the end.
        drop(j);
        let torn = segment_path(dir.path(), *journal_files(dir.path()).last().unwrap());
        let mut f = OpenOptions::new().append(true).open(&torn).unwrap();
        f.write_all(b"{\"v\":2,\"seq\":8,\"checkp").unwrap();
        drop((f, spool));
        let mut spool = Spool::open(dir.path()).unwrap();
        let (mut j, last) = Journal::open(dir.path(), &mut spool, 60).unwrap();
        assert_eq!(last, 7);
        assert_eq!(spool.take(100).unwrap().items, entries(4, 4));
        assert_eq!(
            journal_files(dir.path()).len(),
            1,
            "only the new, empty segment"
        );
        j.remove_all();
        assert!(journal_files(dir.path()).is_empty());
    }

    #[test]
    fn the_current_segment_is_emptied_once_everything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        let (mut j, _) = Journal::open(dir.path(), &mut spool, 1 << 20).unwrap();
        j.append(&entries(1, 5)).unwrap();
        j.release(5);
        assert!(j.current_len > 0, "entry 5 is only in memory");
        j.release(6);
        assert_eq!(j.current_len, 0);
        let path = segment_path(dir.path(), 0);
        assert_eq!(fs::metadata(path).unwrap().len(), 0);
    }
}
