//! The inbox between the senders ([`super::RecordSink`]) and the intake thread.
//!
//! A quality report is the bulk of the records (one per member and interval: 2,000 a second
//! for 2,000 members) and bills nothing; every other record (a session, a sub-session, a
//! client's log) is rare and is what the bills are made of. So the two are taken in
//! differently, in one FIFO that keeps their order:
//! - a record of a session, a sub-session or a client log wakes the intake thread at once,
//!   as a channel would: it is in the journal within microseconds of being sent;
//! - a quality record waits for the intake thread's next tick ([`Inbox::take`]'s `tick`,
//!   `WriterConfig::intake_tick`) or for the next urgent record, whichever comes first, and
//!   wakes nobody when the thread is already counting down to its tick.
//!
//! At 2,000 quality records a second, a wake-up per record (the sender's futex call, the
//! thread's context switch, the journal's `write`, the database task's wake-up) cost more
//! than the row's SQLite work; per tick it is shared by the tick's records. What a crash of
//! the process can lose widens for quality records only: those sent within the last tick.

use super::{Msg, RecordDropped};
use rtcroom_core::Record;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What the intake thread is waiting for, which says whom a send must wake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// It is not waiting: it takes what is there when it comes back.
    No,
    /// The inbox was empty: any record wakes it.
    Any,
    /// It counts down to its tick: only an urgent record (or the stop) wakes it.
    Urgent,
}

#[derive(Debug)]
struct State {
    msgs: Vec<Record>,
    /// A record that must not wait for the tick is in `msgs`.
    urgent: bool,
    /// The writer is stopping: everything sent before is in `msgs`, nothing more is taken.
    stop: bool,
    waiting: Waiting,
}

/// The senders' side and the intake thread's side of one FIFO of records.
#[derive(Debug)]
pub(super) struct Inbox {
    state: Mutex<State>,
    ready: Condvar,
}

/// Whether a record must reach the journal at once (see the module's doc).
fn urgent(r: &Record) -> bool {
    !matches!(r, Record::Quality(_))
}

impl Inbox {
    pub(super) fn new() -> Inbox {
        Inbox {
            state: Mutex::new(State {
                msgs: Vec::new(),
                urgent: false,
                stop: false,
                waiting: Waiting::No,
            }),
            ready: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change under the lock is one step: a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `msg`; a record is refused once the inbox has stopped taking records.
    pub(super) fn send(&self, msg: Msg) -> Result<(), RecordDropped> {
        let mut s = self.lock();
        let wake = match msg {
            Msg::Record(r) => {
                if s.stop {
                    return Err(RecordDropped);
                }
                let now = urgent(&r);
                s.urgent |= now;
                s.msgs.push(r);
                match s.waiting {
                    Waiting::Any => true,
                    Waiting::Urgent => now,
                    Waiting::No => false,
                }
            }
            Msg::Stop => {
                s.stop = true;
                s.waiting != Waiting::No
            }
        };
        if wake {
            // Woken once: later sends before it runs need not call the kernel again.
            s.waiting = Waiting::No;
            drop(s);
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Waits for records and moves them into `buf` (emptied first): at once when an urgent
    /// record or the stop is there; `tick` after the first records were seen when only
    /// quality records are; after `idle` with whatever is there (maybe nothing). True once
    /// the writer is stopping (and `buf` holds the last records).
    pub(super) fn take(&self, buf: &mut Vec<Record>, idle: Duration, tick: Duration) -> bool {
        buf.clear();
        let start = Instant::now();
        let mut s = self.lock();
        let mut tick_at: Option<Instant> = None;
        loop {
            if s.stop || s.urgent {
                break;
            }
            let now = Instant::now();
            if !s.msgs.is_empty() && tick_at.is_none() {
                tick_at = Some(now + tick);
            }
            let until = tick_at.map_or(start + idle, |t| t.min(start + idle));
            if now >= until {
                break;
            }
            s.waiting = if s.msgs.is_empty() {
                Waiting::Any
            } else {
                Waiting::Urgent
            };
            s = self
                .ready
                .wait_timeout(s, until - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            s.waiting = Waiting::No;
        }
        std::mem::swap(&mut s.msgs, buf);
        s.urgent = false;
        s.stop
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtcroom_core::{Millis, Quality, SubSessionBegin};
    use std::sync::Arc;
    use ulid::Ulid;

    fn quality() -> Record {
        Record::Quality(Quality {
            id: Ulid::nil(),
            sub_session_id: Ulid::nil(),
            session_id: Ulid::nil(),
            user_id: "a".into(),
            remote_user_id: "b".into(),
            create_time: Millis(1),
            stats: Default::default(),
        })
    }

    /// An urgent record.
    fn log() -> Record {
        Record::SubSessionBegin(SubSessionBegin {
            sub_session_id: Ulid::nil(),
            begin_time: Millis(1),
        })
    }

    const LONG: Duration = Duration::from_secs(30);

    /// An urgent record ends the wait at once and brings the quality records sent before it,
    /// in order; quality records alone wait for the tick.
    #[test]
    fn an_urgent_record_is_taken_at_once_with_the_quality_records_before_it() {
        let inbox = Arc::new(Inbox::new());
        let sender = Arc::clone(&inbox);
        let t = std::thread::spawn(move || {
            sender.send(Msg::Record(quality())).unwrap();
            sender.send(Msg::Record(quality())).unwrap();
            sender.send(Msg::Record(log())).unwrap();
        });
        let mut buf = Vec::new();
        let mut got = Vec::new();
        // Taken with a tick that never comes: only the urgent record can end the wait.
        while got.len() < 3 {
            assert!(!inbox.take(&mut buf, LONG, LONG));
            got.append(&mut buf);
        }
        t.join().unwrap();
        let kinds: Vec<bool> = got.iter().map(urgent).collect();
        assert_eq!(kinds, [false, false, true]);
    }

    /// Quality records alone come out when the tick has passed, not before the first of
    /// them was seen.
    #[test]
    fn quality_records_wait_for_the_tick() {
        let inbox = Inbox::new();
        for _ in 0..3 {
            inbox.send(Msg::Record(quality())).unwrap();
        }
        let mut buf = Vec::new();
        let tick = Duration::from_millis(20);
        let before = Instant::now();
        assert!(!inbox.take(&mut buf, LONG, tick));
        assert!(before.elapsed() >= tick, "taken before the tick");
        assert_eq!(buf.len(), 3);
        assert!(!inbox.take(&mut buf, Duration::from_millis(1), LONG));
        assert!(buf.is_empty(), "taken twice");
    }

    /// The stop ends the wait, brings every record sent before it, and refuses later ones.
    #[test]
    fn the_stop_brings_what_came_before_it_and_refuses_the_rest() {
        let inbox = Inbox::new();
        inbox.send(Msg::Record(quality())).unwrap();
        inbox.send(Msg::Stop).unwrap();
        assert!(inbox.send(Msg::Record(log())).is_err());
        let mut buf = Vec::new();
        assert!(inbox.take(&mut buf, LONG, LONG));
        assert_eq!(buf.len(), 1);
    }

    /// With nothing sent, the wait ends after `idle` with nothing.
    #[test]
    fn an_idle_wait_ends_empty() {
        let inbox = Inbox::new();
        let mut buf = vec![quality()];
        assert!(!inbox.take(&mut buf, Duration::from_millis(5), LONG));
        assert!(buf.is_empty());
    }
}
