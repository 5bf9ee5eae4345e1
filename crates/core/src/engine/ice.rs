//! ICE servers: the registry the engine owns in [`IceMode::Registry`], the server chosen for
//! each pair, and the `rtcConfig` each member is handed.

use super::state::{RoomNo, Sub};
use super::{Engine, Refusal};
use crate::Millis;
use crate::config::IceMode;
use crate::effect::{Effect, Event};
use crate::ids::Entropy;
use rtcroom_ice::{
    Chosen, GeoPoint, HealthEvent, IceCommand, Media, Need, Registry, Reply, ServerStatus,
};
use rtcroom_protocol::{Ident, ResultCode, SharedJson};
use std::sync::Arc;

/// The registry a configuration asks for: none in [`IceMode::Static`].
pub(super) fn registry_for(mode: &IceMode) -> Option<Registry> {
    match mode {
        IceMode::Registry(c) => Some(Registry::new(c.clone())),
        IceMode::Static => None,
    }
}

fn media(talk_type: i64) -> Media {
    if talk_type == 0 {
        Media::AudioOnly
    } else {
        Media::Video
    }
}

impl<E: Entropy> Engine<E> {
    /// An ICE server (or its agent) registered, deregistered or reported its load. Answers
    /// with the plain-text reply of the ICE HTTP API.
    pub fn ice_command(&mut self, now: impl Into<crate::Now>, command: IceCommand) -> Reply {
        let now = self.clock(now);
        match self.ice.as_mut() {
            Some(registry) => registry.handle(now.0, command),
            // Without a registry there is nothing to register with.
            None => Reply::NotFound,
        }
    }

    /// `[cluster]`: another node's embedded TURN server registered or re-registered; its
    /// members' credentials are minted with the cluster's TURN secret.
    pub fn ice_register_peer(
        &mut self,
        now: impl Into<crate::Now>,
        registration: rtcroom_ice::Register,
    ) -> Reply {
        let now = self.clock(now);
        match self.ice.as_mut() {
            Some(registry) => registry.register_peer(now.0, registration),
            None => Reply::NotFound,
        }
    }

    /// `[cluster]`: reservations another node's selections made (`(server, kbps)`, the
    /// server named `ADDRESS:TURN_PORT`), held here too until each server's next report.
    pub fn ice_reserved(&mut self, reserved: &[(String, u64)]) {
        if let Some(registry) = self.ice.as_mut() {
            for (server, kbps) in reserved {
                registry.reserve(server, *kbps);
            }
        }
    }

    /// The registered ICE servers and their load.
    pub fn ice_servers(&self, now: impl Into<crate::Now>) -> Vec<ServerStatus> {
        let now = now.into().mono;
        self.ice
            .as_ref()
            .map(|r| r.servers(now.0))
            .unwrap_or_default()
    }

    /// Check which ICE servers left rotation or came back; each change becomes an event.
    pub fn ice_poll(&mut self, now: impl Into<crate::Now>) {
        let now = self.clock(now);
        let wall_offset = self.wall_offset;
        let Some(registry) = self.ice.as_mut() else {
            return;
        };
        for e in registry.poll_health(now.0) {
            let event = match e {
                HealthEvent::LeftRotation {
                    server,
                    last_seen_ms,
                } => Event::IceHealth {
                    server,
                    in_rotation: false,
                    last_seen_ms: Some(crate::time::shift(Millis(last_seen_ms), wall_offset).0),
                },
                HealthEvent::Returned { server } => Event::IceHealth {
                    server,
                    in_rotation: true,
                    last_seen_ms: None,
                },
            };
            self.out.push_back(Effect::Event(event));
        }
    }

    /// The `rtcConfig` a login hands out: the server a new pair would get now (nothing is
    /// reserved), with credentials for `uid`; the static one without a registry.
    pub fn login_rtc_config(&self, now: impl Into<crate::Now>, uid: &str) -> Option<SharedJson> {
        let now = now.into();
        match &self.ice {
            Some(registry) => registry
                .peek(now.mono.0, None, &[])
                .map(|c| SharedJson::rtc_config(&c.rtc_config(uid, now.wall.0))),
            None => Some(self.cfg.rtc_config.clone()),
        }
    }

    /// The ICE server of a pair, from one of its sub-sessions: the one chosen at join, or,
    /// for a pair restored from a snapshot, the registered server at the recorded address.
    pub(super) fn pair_ice(&self, sub: &Sub) -> Option<Arc<Chosen>> {
        if sub.ice.is_some() || sub.ice_ip.is_empty() {
            return sub.ice.clone();
        }
        let registry = self.ice.as_ref()?;
        registry.registered(&sub.ice_ip).map(Arc::new)
    }

    /// The `rtcConfig` member `uid` gets for a pair on `chosen` (the static one when the
    /// pair has no chosen server), its credentials minted at `wall`.
    pub(super) fn rtc_for(&self, chosen: Option<&Chosen>, uid: &Ident, wall: Millis) -> SharedJson {
        match chosen {
            Some(c) => SharedJson::rtc_config(&c.rtc_config(uid.key(), wall.0)),
            None => self.cfg.rtc_config.clone(),
        }
    }

    /// One ICE server for each pair a newcomer with `talk_type` would form in `room`, in the
    /// order of the room's members (empty without a registry). Each selection reserves its
    /// need and prefers the server nearest to both members (the newcomer at `at`); a pair no
    /// server has room for refuses the join (`result: 8`).
    pub(super) fn choose_ice(
        &mut self,
        now: Millis,
        room: Option<RoomNo>,
        talk_type: i64,
        at: Option<GeoPoint>,
    ) -> Result<Vec<Option<Arc<Chosen>>>, Refusal> {
        let Some(registry) = self.ice.as_mut() else {
            return Ok(Vec::new());
        };
        let members = room.map_or(&[][..], |no| &self.rooms[&no].members[..]);
        let mut chosen = Vec::with_capacity(members.len());
        for m in members {
            let need = Need::pair(media(m.talk_type), media(talk_type));
            match registry.select(now.0, need, None, &[m.at, at]) {
                Ok(c) => {
                    self.out.push_back(Effect::Event(Event::IceReserved {
                        server: c.server(),
                        kbps: c.reserved_kbps,
                    }));
                    chosen.push(Some(Arc::new(c)));
                }
                Err(no_room) => {
                    return Err(Refusal::new(
                        ResultCode::IceBandwidthFull,
                        no_room.to_string(),
                    ));
                }
            }
        }
        Ok(chosen)
    }
}
