//! The spool: an append-only file of records that could not be written yet, read back in
//! order when the database returns.
//!
//! Files in the spool directory:
//! - `records.jsonl`: one JSON line per entry (see `line`), appended and fsynced per spill;
//! - `records.offset`: how many bytes of it are known to be in the database. It is written
//!   after each committed batch without fsync: after a crash an older offset only means
//!   some items are applied again, which the idempotent writes make harmless;
//! - `rejected.jsonl`: items the database refused (not for being away) and lines that could
//!   not be read, each with the reason, kept for an operator instead of blocking the queue.
//!
//! When everything in `records.jsonl` is committed the file is truncated to empty. This
//! module does blocking file IO: the writer calls it from a blocking thread.

use crate::error::StoreError;
use crate::line::{self, Entry};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub(crate) struct Spool {
    data_path: PathBuf,
    offset_path: PathBuf,
    rejected_path: PathBuf,
    file: File,
    /// Bytes in the data file.
    len: u64,
    /// Where the next read starts (items before it are taken, maybe not committed).
    read_pos: u64,
    /// Bytes known to be in the database.
    committed: u64,
    /// Items after `committed`.
    pending: u64,
    /// The highest sequence number in the file when it was opened (0 for none).
    last_seq: u64,
}

/// Items read from the spool, to commit up to `end` once they are written.
#[derive(Debug)]
pub(crate) struct SpoolBatch {
    pub items: Vec<Entry>,
    pub end: u64,
    /// Lines read, including unreadable ones (which are moved to the rejected file).
    pub lines: u64,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What one pass over the data file found (see [`scan_lines`]).
struct LineScan {
    /// Where the last whole line ends.
    complete: u64,
    /// Whole lines in the file.
    lines: u64,
    /// Lines that end at or before the committed offset.
    before: u64,
    /// Whether the committed offset falls on a line end (or is 0).
    offset_on_line_end: bool,
    /// Bytes read (the file length, including a torn last line).
    pos: u64,
    /// Where the last whole line starts.
    last_start: u64,
}

/// One streaming pass (the spool can be large after a long outage): where the last
/// whole line ends, how many lines there are, and how many end at or before the
/// committed offset, which is valid only if it falls on a line end.
fn scan_lines(file: &File, offset: u64, data_path: &Path) -> Result<LineScan, StoreError> {
    let (mut complete, mut lines, mut before, mut offset_on_line_end) =
        (0u64, 0u64, 0u64, offset == 0);
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut pos = 0u64;
    let mut last_start = 0u64;
    loop {
        let buf = reader.fill_buf().map_err(io_err(data_path))?;
        if buf.is_empty() {
            break;
        }
        for (i, &b) in buf.iter().enumerate() {
            if b == b'\n' {
                let end = pos + i as u64 + 1;
                last_start = complete;
                complete = end;
                lines += 1;
                if end <= offset {
                    before += 1;
                }
                offset_on_line_end |= end == offset;
            }
        }
        let n = buf.len();
        pos += n as u64;
        reader.consume(n);
    }
    Ok(LineScan {
        complete,
        lines,
        before,
        offset_on_line_end,
        pos,
        last_start,
    })
}

impl Spool {
    /// Opens (or creates) the spool in `dir`. A torn last line (the process died while
    /// appending) is cut off: that item was never acknowledged as spooled.
    pub(crate) fn open(dir: &Path) -> Result<Spool, StoreError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let data_path = dir.join("records.jsonl");
        let offset_path = dir.join("records.offset");
        let rejected_path = dir.join("rejected.jsonl");
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&data_path)
            .map_err(io_err(&data_path))?;
        let offset = fs::read_to_string(&offset_path)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let LineScan {
            complete,
            lines,
            before,
            offset_on_line_end,
            pos,
            last_start,
        } = scan_lines(&file, offset, &data_path)?;
        if complete < pos {
            tracing::warn!(
                path = %data_path.display(),
                bytes = pos - complete,
                "cutting a torn last line off the record spool"
            );
            file.set_len(complete).map_err(io_err(&data_path))?;
        }
        let len = complete;
        // The file is in queue order, so its last line holds the highest sequence number.
        let last_seq = if len > 0 {
            let mut f = &file;
            let mut last = vec![0; (len - last_start) as usize];
            f.seek(SeekFrom::Start(last_start))
                .and_then(|_| f.read_exact(&mut last))
                .map_err(io_err(&data_path))?;
            line::seq_of(&String::from_utf8_lossy(&last))
        } else {
            0
        };
        let (committed, pending) = if offset_on_line_end && offset <= len {
            (offset, lines - before)
        } else {
            (0, lines)
        };
        Ok(Spool {
            data_path,
            offset_path,
            rejected_path,
            file,
            len,
            read_pos: committed,
            committed,
            pending,
            last_seq,
        })
    }

    /// The highest sequence number the file held when it was opened.
    pub(crate) fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Puts the entries a crashed run left in its journal behind what is pending here, in
    /// queue order: a pending line numbered at or after the journal's first entry is also in
    /// the journal (it was spilled after the journal began), so it is dropped here and
    /// written once, in its place, from the journal. Rewrites the file.
    pub(crate) fn replay(&mut self, entries: &[Entry]) -> Result<(), StoreError> {
        let Some(first) = entries.first().map(|e| e.seq) else {
            return Ok(());
        };
        let path = self.data_path.clone();
        let tmp = path.with_extension("jsonl.tmp");
        let rewrite = || -> std::io::Result<(File, u64, u64)> {
            let mut src = File::open(&path)?;
            src.seek(SeekFrom::Start(self.committed))?;
            let src = BufReader::new(src.take(self.len - self.committed));
            let mut out = std::io::BufWriter::new(File::create(&tmp)?);
            let (mut len, mut lines) = (0u64, 0u64);
            for l in src.lines() {
                let l = l?;
                if line::seq_of(&l) < first {
                    writeln!(out, "{l}")?;
                    len += l.len() as u64 + 1;
                    lines += 1;
                }
            }
            for e in entries {
                let l = line::encode(e);
                writeln!(out, "{l}")?;
                len += l.len() as u64 + 1;
                lines += 1;
            }
            let f = out.into_inner().map_err(|e| e.into_error())?;
            f.sync_data()?;
            fs::rename(&tmp, &path)?;
            let f = OpenOptions::new().read(true).append(true).open(&path)?;
            Ok((f, len, lines))
        };
        let (file, len, lines) = rewrite().map_err(io_err(&self.data_path))?;
        let _ = fs::remove_file(&self.offset_path);
        self.file = file;
        self.len = len;
        self.read_pos = 0;
        self.committed = 0;
        self.pending = lines;
        self.last_seq = self.last_seq.max(entries.last().map_or(0, |e| e.seq));
        Ok(())
    }

    /// Items in the file that are not known to be in the database.
    pub(crate) fn pending(&self) -> u64 {
        self.pending
    }

    /// Whether every item in the file has been taken by the writer.
    pub(crate) fn all_taken(&self) -> bool {
        self.read_pos == self.len
    }

    /// Appends `items` and syncs them to disk. On failure nothing is appended.
    pub(crate) fn append(&mut self, items: &[Entry]) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let mut buf = String::new();
        for item in items {
            line::encode_into(item, &mut buf);
            buf.push('\n');
        }
        let written = self
            .file
            .write_all(buf.as_bytes())
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // Cut a partial write back off, so the file stays whole lines.
            let _ = self.file.set_len(self.len);
            return Err(io_err(&self.data_path)(e));
        }
        self.len += buf.len() as u64;
        self.pending += items.len() as u64;
        Ok(())
    }

    /// Reads up to `max` items after the last one taken. Unreadable lines are moved to the
    /// rejected file (and counted in `lines` but not in `items`).
    pub(crate) fn take(&mut self, max: usize) -> Result<SpoolBatch, StoreError> {
        let mut f = File::open(&self.data_path).map_err(io_err(&self.data_path))?;
        f.seek(SeekFrom::Start(self.read_pos))
            .map_err(io_err(&self.data_path))?;
        let mut reader = BufReader::new(f.take(self.len - self.read_pos));
        let mut batch = SpoolBatch {
            items: Vec::new(),
            end: self.read_pos,
            lines: 0,
        };
        let mut line = String::new();
        while batch.items.len() < max {
            line.clear();
            let n = reader
                .read_line(&mut line)
                .map_err(io_err(&self.data_path))?;
            if n == 0 {
                break;
            }
            batch.end += n as u64;
            batch.lines += 1;
            match line::decode(line.trim_end()) {
                Ok(item) => batch.items.push(item),
                Err(e) => {
                    tracing::error!(error = %e, "unreadable line in the record spool, moved aside");
                    self.reject_line(line.trim_end(), &e.to_string())?;
                }
            }
        }
        self.read_pos = batch.end;
        Ok(batch)
    }

    /// The items up to `end` (`lines` of them) are in the database. When that is all of
    /// the file, the file is emptied.
    pub(crate) fn commit(&mut self, end: u64, lines: u64) -> Result<(), StoreError> {
        self.committed = end;
        self.pending = self.pending.saturating_sub(lines);
        if self.committed == self.len {
            self.file.set_len(0).map_err(io_err(&self.data_path))?;
            self.len = 0;
            self.read_pos = 0;
            self.committed = 0;
            self.pending = 0;
            match fs::remove_file(&self.offset_path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&self.offset_path)(e)),
            }
            return Ok(());
        }
        fs::write(&self.offset_path, end.to_string()).map_err(io_err(&self.offset_path))
    }

    /// Puts `items` in front of everything not yet committed: used at shutdown for a batch
    /// the writer had taken from memory but could not write, which is older than anything
    /// spilled since. Rewrites the file; only valid when no spool batch is taken.
    pub(crate) fn prepend(&mut self, items: &[Entry]) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let mut rest = Vec::new();
        let mut f = File::open(&self.data_path).map_err(io_err(&self.data_path))?;
        f.seek(SeekFrom::Start(self.committed))
            .map_err(io_err(&self.data_path))?;
        f.read_to_end(&mut rest).map_err(io_err(&self.data_path))?;
        let mut buf = Vec::new();
        for item in items {
            buf.extend_from_slice(line::encode(item).as_bytes());
            buf.push(b'\n');
        }
        buf.extend_from_slice(&rest);
        let tmp = self.data_path.with_extension("jsonl.tmp");
        let write = || -> std::io::Result<File> {
            let mut t = File::create(&tmp)?;
            t.write_all(&buf)?;
            t.sync_data()?;
            fs::rename(&tmp, &self.data_path)?;
            OpenOptions::new()
                .read(true)
                .append(true)
                .open(&self.data_path)
        };
        self.file = write().map_err(io_err(&self.data_path))?;
        let _ = fs::remove_file(&self.offset_path);
        self.len = buf.len() as u64;
        self.committed = 0;
        self.read_pos = 0;
        self.pending += items.len() as u64;
        Ok(())
    }

    /// Keeps an item the database refused, with the reason, for an operator.
    pub(crate) fn reject(&mut self, item: &Entry, reason: &str) -> Result<(), StoreError> {
        self.reject_line(&line::encode(item), reason)
    }

    pub(crate) fn reject_line(&mut self, line: &str, reason: &str) -> Result<(), StoreError> {
        let entry = serde_json::json!({ "reason": reason, "line": line });
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.rejected_path)
            .map_err(io_err(&self.rejected_path))?;
        writeln!(f, "{entry}").map_err(io_err(&self.rejected_path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::Item;
    use rtcroom_core::Millis;

    fn items(from: u64, n: u64) -> Vec<Entry> {
        (from..from + n)
            .map(|i| Entry {
                seq: i + 1,
                item: Item::CloseOpen(Millis(i)),
            })
            .collect()
    }

    #[test]
    fn a_replayed_journal_replaces_the_spilled_copies_of_its_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path()).unwrap();
        // 0..3 spilled long ago; 6..8 spilled while 3..6 was being written (lost in the
        // crash): the journal holds 3..9 and must come back in order, each once.
        s.append(&items(0, 3)).unwrap();
        s.append(&items(6, 2)).unwrap();
        let b = s.take(1).unwrap();
        s.commit(b.end, b.lines).unwrap();
        s.replay(&items(3, 6)).unwrap();
        assert_eq!(s.pending(), 8);
        drop(s);
        let mut s = Spool::open(dir.path()).unwrap();
        assert_eq!(s.last_seq(), 9);
        let b = s.take(100).unwrap();
        assert_eq!(b.items, items(1, 8));
    }

    #[test]
    fn items_come_back_in_order_across_reopen_and_commits() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path()).unwrap();
        s.append(&items(0, 5)).unwrap();
        s.append(&items(5, 5)).unwrap();
        assert_eq!(s.pending(), 10);
        let b = s.take(3).unwrap();
        assert_eq!(b.items, items(0, 3));
        s.commit(b.end, b.lines).unwrap();
        // Taken but not committed: a reopen (a crash) gives them back.
        let b = s.take(3).unwrap();
        assert_eq!(b.items, items(3, 3));
        drop(s);
        let mut s = Spool::open(dir.path()).unwrap();
        assert_eq!(s.pending(), 7);
        let b = s.take(100).unwrap();
        assert_eq!(b.items, items(3, 7));
        assert!(s.all_taken());
        s.commit(b.end, b.lines).unwrap();
        assert_eq!(s.pending(), 0);
        assert_eq!(
            fs::metadata(dir.path().join("records.jsonl"))
                .unwrap()
                .len(),
            0
        );
    }

    #[test]
    fn torn_tail_and_bad_lines_are_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path()).unwrap();
        s.append(&items(0, 2)).unwrap();
        drop(s);
        let path = dir.path().join("records.jsonl");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"v\":2,\"seq\":9,\"nonsense\":1}\n{\"v\":2,\"seq\":10,\"close_op")
            .unwrap();
        drop(f);
        let mut s = Spool::open(dir.path()).unwrap();
        assert_eq!(s.pending(), 3);
        let b = s.take(10).unwrap();
        assert_eq!(b.items, items(0, 2));
        assert_eq!(b.lines, 3);
        let rejected = fs::read_to_string(dir.path().join("rejected.jsonl")).unwrap();
        assert!(rejected.contains("nonsense"), "{rejected}");
    }

    #[test]
    fn prepend_puts_items_before_the_uncommitted_rest() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path()).unwrap();
        s.append(&items(10, 4)).unwrap();
        let b = s.take(2).unwrap();
        s.commit(b.end, b.lines).unwrap();
        // Re-reading after a prepend starts from the prepended items.
        s.prepend(&items(0, 2)).unwrap();
        assert_eq!(s.pending(), 4);
        drop(s);
        let mut s = Spool::open(dir.path()).unwrap();
        let b = s.take(10).unwrap();
        assert_eq!(b.items, [items(0, 2), items(12, 2)].concat());
    }
}
