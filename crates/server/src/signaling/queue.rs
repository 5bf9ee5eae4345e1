//! A connection's outbound queue: bounded, many senders (the hub, the cluster), one
//! receiver (the connection task).
//!
//! Rather than tokio's `mpsc`, for memory: every idle member has one, and a tokio channel
//! allocates its first block of 32 slots and a cache-padded channel head when it is made
//! (~1.5 KiB per member with mimalloc's size classes, and a second block once 32 messages
//! have passed), while a member mostly has nothing queued. Here the queue is a `VecDeque`
//! behind a mutex that allocates on the first message and gives back what a burst grew it to
//! once it is drained; an idle member's queue is one small allocation.
//!
//! The API is the subset of tokio's the server uses, with the same meaning: `try_send` fails
//! with `Full` at the bound and with `Closed` once the receiver is gone; `recv` returns
//! `None` once every sender is gone and the queue is empty, and is cancel-safe.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// Why [`Sender::try_send`] did not queue a message; the message is handed back.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The queue holds its bound: the receiver does not keep up.
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

/// Why [`Receiver::try_recv`] returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    Empty,
    /// Every sender is gone and nothing is left.
    Disconnected,
}

/// Slots a drained queue may keep: a burst (candidates, an SDP with its answer) grows the
/// queue, and an idle member should not hold what the burst needed.
const KEEP: usize = 4;

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    /// The receiver waiting for a message.
    waker: Option<Waker>,
    senders: usize,
    receiver: bool,
}

#[derive(Debug)]
struct Shared<T> {
    state: Mutex<State<T>>,
    bound: usize,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Every change of the state is one step: a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A queue holding at most `bound` messages (at least 1).
pub fn channel<T>(bound: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            waker: None,
            senders: 1,
            receiver: true,
        }),
        bound: bound.max(1),
    });
    (
        Sender {
            shared: Arc::clone(&shared),
        },
        Receiver { shared },
    )
}

/// The sending side; cheap to clone.
#[derive(Debug)]
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Queues `item` unless the queue is full or the receiver is gone; never waits.
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        let waker = {
            let mut s = self.shared.lock();
            if !s.receiver {
                return Err(TrySendError::Closed(item));
            }
            if s.items.len() >= self.shared.bound {
                return Err(TrySendError::Full(item));
            }
            s.items.push_back(item);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut s = self.shared.lock();
            s.senders -= 1;
            if s.senders == 0 { s.waker.take() } else { None }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The receiving side (the connection task).
#[derive(Debug)]
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Receiver<T> {
    /// The next message; `None` once every sender is gone and the queue is empty.
    /// Cancel-safe: a message is taken only when this returns it.
    pub async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut s = self.shared.lock();
        match take(&mut s) {
            Ok(item) => Poll::Ready(Some(item)),
            Err(TryRecvError::Disconnected) => Poll::Ready(None),
            Err(TryRecvError::Empty) => {
                match &mut s.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    w => *w = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }

    /// A message if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        take(&mut self.shared.lock())
    }
}

fn take<T>(s: &mut State<T>) -> Result<T, TryRecvError> {
    match s.items.pop_front() {
        Some(item) => {
            if s.items.is_empty() && s.items.capacity() > KEEP {
                s.items = VecDeque::new();
            }
            Ok(item)
        }
        None if s.senders == 0 => Err(TryRecvError::Disconnected),
        None => Err(TryRecvError::Empty),
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // Messages still queued go with the receiver, as with tokio's channel.
        let items = {
            let mut s = self.shared.lock();
            s.receiver = false;
            s.waker = None;
            std::mem::take(&mut s.items)
        };
        drop(items);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_arrive_in_order_up_to_the_bound() {
        let (tx, mut rx) = channel(3);
        for i in 0..3 {
            tx.try_send(i).unwrap();
        }
        assert_eq!(tx.try_send(9), Err(TrySendError::Full(9)));
        assert_eq!(rx.recv().await, Some(0));
        tx.try_send(3).unwrap();
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(rx.recv().await, Some(3));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }

    #[tokio::test]
    async fn the_receiver_ends_when_every_sender_is_gone() {
        let (tx, mut rx) = channel(8);
        let other = tx.clone();
        tx.try_send(1).unwrap();
        drop(tx);
        other.try_send(2).unwrap();
        let waiting = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(i) = rx.recv().await {
                got.push(i);
            }
            got
        });
        tokio::task::yield_now().await;
        other.try_send(3).unwrap();
        drop(other);
        assert_eq!(waiting.await.unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn a_sender_is_told_when_the_receiver_is_gone() {
        let (tx, rx) = channel(8);
        tx.try_send(1).unwrap();
        drop(rx);
        assert_eq!(tx.try_send(2), Err(TrySendError::Closed(2)));
    }

    #[test]
    fn a_drained_queue_lets_go_of_what_a_burst_grew() {
        let (tx, mut rx) = channel(256);
        for i in 0..100 {
            tx.try_send(i).unwrap();
        }
        while rx.try_recv().is_ok() {}
        assert!(rx.shared.lock().items.capacity() <= KEEP);
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_for_a_message() {
        let (tx, mut rx) = channel(8);
        let waiting = tokio::spawn(async move { rx.recv().await });
        tokio::task::yield_now().await;
        tx.try_send(7).unwrap();
        assert_eq!(waiting.await.unwrap(), Some(7));
    }
}
