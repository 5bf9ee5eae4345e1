//! `[cluster]`: which rooms changed since their state was last handed to the cluster's
//! writer, and their states, taken from the engine by the hub at most every
//! `STATE_EVERY`. A full queue keeps the rooms for the next time; nothing is dropped.

use crate::clock::engine_now;
use rtcroom_core::{ConnId, Engine, Entropy, RoomRef, Snapshot};
use tokio::sync::mpsc;

/// A room's state for the cluster's copy in Redis: its snapshot (`None`: the room is gone)
/// and the connection each member sits on.
#[derive(Debug)]
pub struct RoomState {
    pub room: RoomRef,
    pub snapshot: Option<Snapshot>,
    pub conns: Vec<(String, ConnId)>,
}

/// `[cluster]`: the rooms changed since their state was last handed to the writer.
pub struct Changed {
    out: Option<mpsc::Sender<Vec<RoomState>>>,
    rooms: std::collections::BTreeSet<RoomRef>,
}

impl Changed {
    pub fn new<E: Entropy>(
        engine: &mut Engine<E>,
        out: Option<mpsc::Sender<Vec<RoomState>>>,
    ) -> Self {
        if out.is_some() {
            // The engine tracks changes from its first call on.
            let _ = engine.take_changed_rooms();
        }
        Self {
            out,
            rooms: Default::default(),
        }
    }

    pub fn on(&self) -> bool {
        self.out.is_some()
    }

    /// Every room counts as changed.
    pub fn all<E: Entropy>(&mut self, engine: &Engine<E>) {
        if self.out.is_some() {
            self.rooms
                .extend(engine.rooms().into_iter().map(|r| RoomRef {
                    app_id: r.app_id,
                    room_id: r.room_id,
                }));
        }
    }

    pub fn note<E: Entropy>(&mut self, engine: &mut Engine<E>) {
        if self.out.is_some() {
            self.rooms.extend(engine.take_changed_rooms());
        }
    }

    /// Hand the changed rooms' states over; kept when the writer's queue is full.
    pub fn flush<E: Entropy>(&mut self, engine: &Engine<E>) {
        let Some(out) = &self.out else {
            return;
        };
        if self.rooms.is_empty() || out.capacity() == 0 {
            return;
        }
        let t = engine_now();
        let states = std::mem::take(&mut self.rooms)
            .into_iter()
            .map(|room| {
                let conns = engine.room_conns(&room);
                let snapshot = (!conns.is_empty())
                    .then(|| engine.snapshot_rooms(t, std::slice::from_ref(&room)));
                RoomState {
                    room,
                    snapshot,
                    conns,
                }
            })
            .collect();
        let _ = out.try_send(states);
    }
}
