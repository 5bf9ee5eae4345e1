//! Setup: members connect and join one after the other, and every pair walks the call
//! flow (description, candidates, `peerConnected`) until the member is ready.

use super::{Room, head};
use crate::stats::Phase;
use crate::stats::now_us;
use crate::wire::{self, Desc, Proto};
use anyhow::{Context, bail};
use futures_util::StreamExt;
use std::time::Instant;

impl Room {
    /// Connect member `j` and send its join (PeerJS joins by connecting).
    pub(super) async fn add_member(&mut self, j: usize) -> anyhow::Result<()> {
        let ctx = self.ctx.clone();
        ctx.pacer.wait().await;
        let permit = ctx.permits.clone().acquire_owned().await?;
        let started = Instant::now();
        let uid = self.members[j].me.uid.clone();
        let ws = match tokio::time::timeout(
            ctx.cfg.step_timeout,
            ctx.connector.connect(&uid, self.first + j),
        )
        .await
        {
            Ok(Ok(ws)) => ws,
            Ok(Err(e)) => {
                self.shared().count(&self.shared().counters.connect_errors);
                return Err(e).context("connect");
            }
            Err(_) => {
                self.shared().count(&self.shared().counters.connect_errors);
                bail!("connect: no WebSocket within {:?}", ctx.cfg.step_timeout);
            }
        };
        self.shared().count(&self.shared().counters.connects);
        let (sink, stream) = ws.split();
        self.streams.push(stream.map(move |m| (j, m)).boxed());
        let m = &mut self.members[j];
        m.sink = Some(sink);
        m.permit = Some(permit);
        m.join_started = started;
        if self.proto() == Proto::Rtcroom {
            let frame = wire::join(&self.members[j].me);
            self.send(j, frame).await;
        }
        Ok(())
    }

    pub(super) async fn on_joined(&mut self, j: usize, frame: &str) -> anyhow::Result<()> {
        let proto = self.proto();
        if proto == Proto::Rtcroom && wire::result(frame) != 0 {
            self.shared().count(&self.shared().counters.join_refused);
            bail!("join refused: {}", head(frame));
        }
        if self.members[j].joined {
            bail!("a second respJoin: {}", head(frame));
        }
        self.shared().count(&self.shared().counters.joins);
        if self.ctx.shared.phase() == Phase::Measure {
            let took = self.members[j].join_started.elapsed();
            let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
            let sent = crate::stats::micros_at(self.members[j].join_started);
            self.latency.record(&self.ctx.shared, sent, us);
        }
        let m = &mut self.members[j];
        m.joined = true;
        m.permit = None;
        if let Some(session) = wire::str_field(frame, "sessionId") {
            m.session_set(session);
        }
        // The SDK sends its first keepLive right after respJoin.
        self.keep_alive(j).await;
        if !self.ctx.cfg.call || self.members.len() == 1 {
            self.mark_ready(j);
        } else if proto == Proto::PeerJs {
            // PeerJS has no rooms: the newcomer calls the members already there.
            for x in 0..j {
                if self.members[x].joined {
                    self.send_desc(j, x, Desc::Offer, now_us()).await;
                }
            }
        }
        if j + 1 < self.members.len() {
            self.add_member(j + 1).await?;
        }
        Ok(())
    }

    pub(super) fn mark_ready(&mut self, j: usize) {
        if !self.members[j].ready {
            self.members[j].ready = true;
            self.shared().count(&self.shared().counters.ready);
        }
    }

    pub(super) async fn maybe_connected(&mut self, j: usize, x: usize) {
        let link = &self.members[j].links[x];
        if link.connected || !link.described || link.candidates < self.ctx.cfg.candidates {
            return;
        }
        self.members[j].links[x].connected = true;
        if self.proto() == Proto::Rtcroom {
            let frame = wire::peer_connected(&self.members[j].me, &self.members[x].me.uid);
            self.send(j, frame).await;
            // The first quality report goes out with the connection.
            self.report_stats(j, x).await;
        }
        let n = self.members.len();
        if (0..n).all(|y| y == j || self.members[j].links[y].connected) {
            self.mark_ready(j);
        }
    }

    pub(super) async fn send_candidates(&mut self, j: usize, to: usize) {
        for i in 0..self.ctx.cfg.candidates {
            let frame = self
                .ctx
                .bodies
                .candidate(&self.members[j].me, &self.members[to].me.uid, i);
            if !self.send(j, frame).await {
                return;
            }
        }
    }
}
