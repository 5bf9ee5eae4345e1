//! Stop: members leave (waiting a little for the answers), then every connection closes.

use super::Room;
use crate::wire::{self, Kind, Proto};
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

impl Room {
    /// The end of the run: leave (waiting a little for the answers), then close.
    pub(super) async fn stop(&mut self) {
        if !(self.ctx.cfg.leave_on_stop && self.proto() == Proto::Rtcroom) {
            return;
        }
        let mut expected = 0;
        for j in 0..self.members.len() {
            if self.members[j].joined && self.members[j].sink.is_some() {
                let frame = wire::leave(&self.members[j].me);
                if self.send(j, frame).await {
                    self.members[j].left = true;
                    expected += 1;
                }
            }
        }
        let deadline = tokio::time::Instant::now() + self.ctx.cfg.step_timeout;
        let mut got = 0;
        while got < expected {
            match tokio::time::timeout_at(deadline, self.streams.next()).await {
                Ok(Some((_, Ok(Message::Text(t))))) => {
                    if wire::classify(self.proto(), t.as_str()) == Kind::RespLeave {
                        got += 1;
                        self.shared().count(&self.shared().counters.resp_leave);
                        self.check(0, t.as_str());
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        if got < expected {
            let missing = expected - got;
            self.shared().error(|| {
                format!(
                    "{missing} respLeave missing after {:?}",
                    self.ctx.cfg.step_timeout
                )
            });
        }
    }

    pub(super) async fn close_all(&mut self) {
        for m in &mut self.members {
            if let Some(mut sink) = m.sink.take() {
                let _ = tokio::time::timeout(Duration::from_secs(2), sink.close()).await;
            }
        }
    }
}
