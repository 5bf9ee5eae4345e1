//! Load: offers in a closed loop or at a fixed rate once every member is connected, and
//! the latency of each relayed description.

use super::{Load, Reply, Room, head};
use crate::stats::{Phase, now_us};
use crate::wire::{self, Desc};
use anyhow::bail;

impl Room {
    pub(super) async fn start_load(&mut self) {
        let closed = matches!(self.ctx.cfg.load, Load::Closed(_));
        if closed && self.members.len() >= 2 && self.members[0].links[1].connected {
            self.send_desc(0, 1, Desc::Offer, now_us()).await;
        }
    }

    pub(super) fn record_latency(&mut self, frame: &str) {
        if self.ctx.shared.phase() != Phase::Measure {
            return;
        }
        if let Some(ts) = wire::timestamp(frame) {
            self.latency
                .record(&self.ctx.shared, ts, now_us().saturating_sub(ts));
        }
    }

    pub(super) async fn send_desc(&mut self, j: usize, to: usize, kind: Desc, ts: u64) -> bool {
        self.members[j].variant = self.members[j].variant.wrapping_add(1);
        let m = &self.members[j];
        let frame = self
            .ctx
            .bodies
            .desc(&m.me, &self.members[to].me.uid, kind, m.variant, ts);
        self.send(j, frame).await
    }

    /// A relayed offer: during the load, the configured reply; before, the call flow
    /// (answer, then trickle candidates).
    pub(super) async fn on_relay_offer(
        &mut self,
        j: usize,
        from: Option<usize>,
        frame: &str,
    ) -> anyhow::Result<()> {
        self.shared().count(&self.shared().counters.relayed_offers);
        self.record_latency(frame);
        let Some(x) = from else {
            bail!("relayOffer from an unknown member: {}", head(frame));
        };
        if self.members[j].links[x].connected {
            match self.ctx.cfg.load {
                Load::Closed(reply) | Load::Rate(_, reply) if self.sending() => {
                    match reply {
                        Reply::Offer => self.send_desc(j, x, Desc::Offer, now_us()).await,
                        Reply::Answer => self.send_desc(j, x, Desc::Answer, now_us()).await,
                        Reply::None => true,
                    };
                }
                _ => {}
            }
        } else {
            // The call flow: answer, then trickle candidates.
            self.send_desc(j, x, Desc::Answer, now_us()).await;
            self.send_candidates(j, x).await;
            self.members[j].links[x].described = true;
            self.maybe_connected(j, x).await;
        }
        Ok(())
    }

    /// A relayed answer: during a closed loop of answers, the next offer; before, the
    /// call flow (trickle candidates).
    pub(super) async fn on_relay_answer(
        &mut self,
        j: usize,
        from: Option<usize>,
        frame: &str,
    ) -> anyhow::Result<()> {
        self.shared().count(&self.shared().counters.relayed_answers);
        self.record_latency(frame);
        let Some(x) = from else {
            bail!("relayAnswer from an unknown member: {}", head(frame));
        };
        if self.members[j].links[x].connected {
            if matches!(self.ctx.cfg.load, Load::Closed(Reply::Answer)) && self.sending() {
                self.send_desc(j, x, Desc::Offer, now_us()).await;
            }
        } else {
            self.members[j].links[x].described = true;
            self.send_candidates(j, x).await;
            self.maybe_connected(j, x).await;
        }
        Ok(())
    }
}
