//! Log lines leave the process through a bounded queue to a writer thread.
//!
//! A task that logs (the hub above all) only formats its line and hands it over with
//! `try_send`: it never writes to stderr itself, so a stderr that is not read (a full pipe,
//! a stalled journald or terminal) cannot stall signaling. The writer thread blocks on stderr
//! in its place. When [`QUEUE_LINES`] lines wait, further lines are dropped and counted in
//! `rtcroom_log_lines_dropped_total`.

use super::metrics::metrics;
use std::io::Write;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant};
use tracing_subscriber::fmt::MakeWriter;

/// Lines that may wait for the writer thread before lines are dropped.
pub const QUEUE_LINES: usize = 8192;

/// At most this many bytes of waiting lines go into one write.
const BATCH: usize = 64 * 1024;

/// How long the end of a command waits for the lines still queued to be written.
const FLUSH_WAIT: Duration = Duration::from_secs(2);

enum Item {
    Line(Vec<u8>),
    /// Answered once every line queued before it was written.
    Flush(mpsc::Sender<()>),
}

/// Install the log subscriber (human-readable by default, JSON lines with `json`) and start
/// the writer thread. Keep the guard for the life of the command: dropping it writes what is
/// still queued (waiting a bounded time).
pub fn init(format: &str, level: &str) -> LogGuard {
    use tracing_subscriber::EnvFilter;
    let (tx, rx) = mpsc::sync_channel(QUEUE_LINES);
    let spawned = std::thread::Builder::new()
        .name("rtcroom-log".into())
        .spawn(move || write_lines(&rx, &mut std::io::stderr()));
    if let Err(e) = spawned {
        // Without the thread every line would be dropped: say so once, where it is seen.
        eprintln!("cannot start the log writer thread: {e}");
    }
    let queue = Queue { tx: tx.clone() };
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    // Colours only for a person at a terminal: a file, a pipe or journald gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(queue);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    LogGuard { tx }
}

/// The writer thread: write lines as they come, what waits together in one write.
fn write_lines(rx: &Receiver<Item>, out: &mut impl Write) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        let mut flushed = Vec::new();
        while let Some(item) = next.take() {
            match item {
                Item::Line(line) => batch.extend_from_slice(&line),
                Item::Flush(done) => flushed.push(done),
            }
            if batch.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        // A failed write (stderr closed) loses these lines; there is nowhere to report it.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        for done in flushed {
            let _ = done.send(());
        }
    }
}

/// The subscriber's writer: each event's line is gathered, then queued when it is dropped.
#[derive(Clone)]
struct Queue {
    tx: SyncSender<Item>,
}

impl<'a> MakeWriter<'a> for Queue {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            tx: &self.tx,
            line: Vec::new(),
        }
    }
}

/// One event's line on its way into the queue.
struct LineWriter<'a> {
    tx: &'a SyncSender<Item>,
    line: Vec<u8>,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter<'_> {
    fn drop(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let line = std::mem::take(&mut self.line);
        if let Err(TrySendError::Full(_)) = self.tx.try_send(Item::Line(line)) {
            metrics().log_lines_dropped.inc();
        }
    }
}

/// Kept by a command while it logs; dropping it writes the queued lines, within a bound.
#[must_use = "dropping the guard at once would end the command's wait for its last lines"]
pub struct LogGuard {
    tx: SyncSender<Item>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        let deadline = Instant::now() + FLUSH_WAIT;
        let (done_tx, done_rx) = mpsc::channel();
        let mut item = Item::Flush(done_tx);
        // The queue may be full of lines that a stalled stderr holds up: retry, within a bound.
        loop {
            match self.tx.try_send(item) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return,
                Err(TrySendError::Full(back)) => {
                    if Instant::now() >= deadline {
                        return;
                    }
                    item = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        let _ = done_rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_lines_are_written_in_order_and_flushes_answered_after_them() {
        let (tx, rx) = mpsc::sync_channel(16);
        for i in 0..5 {
            tx.send(Item::Line(format!("line {i}\n").into_bytes()))
                .unwrap();
        }
        let (done_tx, done_rx) = mpsc::channel();
        tx.send(Item::Flush(done_tx)).unwrap();
        drop(tx);
        let mut out = Vec::new();
        write_lines(&rx, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "line 0\nline 1\nline 2\nline 3\nline 4\n"
        );
        assert!(done_rx.try_recv().is_ok(), "the flush was answered");
    }

    #[test]
    fn a_full_queue_drops_lines_and_counts_them() {
        let (tx, _rx) = mpsc::sync_channel(1);
        let before = metrics().log_lines_dropped.get();
        for _ in 0..3 {
            let mut w = LineWriter {
                tx: &tx,
                line: Vec::new(),
            };
            w.write_all(b"a line\n").unwrap();
        }
        // One line fits; nobody reads, so the other two are dropped without waiting.
        assert!(metrics().log_lines_dropped.get() >= before + 2);
    }
}
