//! The WebSocket shell of the signaling protocol: one task per connection.
//!
//! The task reads frames, decodes them (in parallel with every other connection), attaches
//! the token check for `join`/`updateToken`, and hands them to the hub; it writes what the
//! hub queues for it, serializing each message here rather than in the hub. It owns no
//! room state.

use super::frame::{Frames, Incoming, Text};
use super::hub::{Hub, HubMsg, Outbound};
use super::queue;
use super::route::{Edge, Owner, Payload, Socketside};
use super::token::TokenCheck;
use super::ws::{ReadError, Socket};
use crate::ops::metrics;
use rtcroom_core::{ConnId, Grant};
use rtcroom_protocol::{DecodeError, Request, decode_binary, decode_shared};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;

/// What every connection task shares.
pub struct Signaling {
    pub hub: Hub,
    pub tokens: Arc<dyn TokenCheck>,
    pub max_frame: usize,
    pub outbound_queue: usize,
    pub max_connections: usize,
    /// How long one write to a client may take before the connection is given up.
    pub write_timeout: Duration,
    pub open: AtomicUsize,
    /// The cluster, with `[cluster]`: joins of rooms that another node owns are served there.
    pub edge: Option<Arc<dyn Edge>>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Signaling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signaling")
            .field("max_frame", &self.max_frame)
            .field("open", &self.open.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Signaling {
    pub fn new(
        hub: Hub,
        tokens: Arc<dyn TokenCheck>,
        max_frame: usize,
        outbound_queue: usize,
        max_connections: usize,
        write_timeout: Duration,
    ) -> Self {
        Self {
            hub,
            tokens,
            max_frame,
            outbound_queue,
            max_connections,
            write_timeout,
            open: AtomicUsize::new(0),
            edge: None,
            next_id: AtomicU64::new(1),
        }
    }

    /// Serve rooms owned by other nodes through `edge` (`[cluster]`).
    pub fn with_edge(mut self, edge: Arc<dyn Edge>) -> Self {
        self.edge = Some(edge);
        self
    }

    /// Reserve a place for one more connection, if there is room.
    pub fn admit(&self) -> bool {
        let prev = self.open.fetch_add(1, Ordering::AcqRel);
        if prev >= self.max_connections {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Give back a place taken by `admit`.
    pub fn release(&self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }

    /// Wait until every connection task has ended, at most `within`; whether they all did.
    /// At a stop the hub's last step queues a close frame for each connection, which its
    /// task writes afterwards: the process must not end under them.
    pub async fn all_closed(&self, within: Duration) -> bool {
        let until = tokio::time::Instant::now() + within;
        loop {
            if self.open.load(Ordering::Acquire) == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// At most this many bytes of queued frames go into one write.
const BATCH: usize = 64 * 1024;

/// Serve one admitted connection from client address `ip` until it closes; `origin` is the
/// host of its `Origin` header (a browser page's), which the token check compares with the
/// app's domains.
pub async fn serve<S>(
    sig: Arc<Signaling>,
    mut socket: Socket<S>,
    ip: String,
    at: Option<rtcroom_ice::GeoPoint>,
    origin: Option<String>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let conn = ConnId(sig.next_id.fetch_add(1, Ordering::Relaxed));
    let (out_tx, out_rx) = queue::channel(sig.outbound_queue);
    let (kill_tx, kill_rx) = oneshot::channel();
    metrics::metrics().connections_opened.inc();
    // In a cluster the task keeps a sender of its own queue: when the connection is bound to
    // another node, the local hub forgets it and the cluster delivers into the same queue.
    let mut route = sig.edge.clone().map(|edge| Route {
        edge,
        out: out_tx.clone(),
        ip: ip.clone(),
        at,
        state: RouteState::Undecided,
        room: (String::new(), String::new()),
    });
    // Boxed, as the handlers in `run` are: a message to the hub is as large as the largest
    // (a decoded frame), and the task would keep room for it for the connection's life.
    let opened = Box::pin(sig.hub.send(HubMsg::Open {
        conn,
        ip,
        at,
        out: out_tx,
        kill: kill_tx,
    }))
    .await;
    if opened {
        let clean = run(
            &sig,
            conn,
            origin.as_deref(),
            &mut socket,
            (out_rx, kill_rx),
            route.as_mut(),
        )
        .await;
        match route {
            Some(r) if r.state == RouteState::Bound => r.edge.closed(conn, clean).await,
            _ => {
                Box::pin(sig.hub.send(HubMsg::Closed { conn, clean })).await;
            }
        }
    }
    sig.release();
    metrics::metrics().connections_closed.inc();
}

/// Where a clustered connection's frames go: decided by its first `join`, and again by a
/// `join` that names another room than the one before.
struct Route {
    edge: Arc<dyn Edge>,
    out: queue::Sender<Outbound>,
    ip: String,
    at: Option<rtcroom_ice::GeoPoint>,
    state: RouteState,
    /// The app and room (key text) of the `join` that decided the route last.
    room: (String, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RouteState {
    /// No join yet: frames go to the local hub.
    Undecided,
    /// The room is owned here (or Redis could not be asked).
    Local,
    /// The room is owned by another node: every frame goes there.
    Bound,
}

impl Route {
    /// Whether `frame` goes to the room's owner elsewhere. A `join` decides: the first one,
    /// and one that names another room than the last (a connection that left its room, or
    /// whose join was refused, may join another, whose owner may be another node). Moving
    /// the connection first asks the node serving it to let it go: it does only when the
    /// member is in no room there (else the join goes there and is refused as on one node:
    /// "leave it first"), and answers after everything it sent the connection. The
    /// connection is then opened at the new room's owner, with a new kill switch for the
    /// connection task.
    async fn goes_to_owner(
        &mut self,
        sig: &Signaling,
        conn: ConnId,
        frame: &Result<Request, DecodeError>,
        kill: &mut Kill,
    ) -> bool {
        let Ok(Request::Join(j)) = frame else {
            return self.state == RouteState::Bound;
        };
        let (app, room) = (j.app_id.as_str(), j.room_id.key());
        if self.state != RouteState::Undecided && self.room.0 == app && self.room.1 == room {
            return self.state == RouteState::Bound;
        }
        let owner = self.edge.owner_of(app, room).await;
        let served_by = match self.state {
            RouteState::Undecided => None,
            RouteState::Local => Some(Owner::Here),
            RouteState::Bound => self.edge.serving(conn),
        };
        if served_by.as_ref() == Some(&owner) {
            self.room = (app.to_owned(), room.to_owned());
            return self.state == RouteState::Bound;
        }
        let released = match self.state {
            RouteState::Undecided => true,
            RouteState::Local => sig.hub.let_go(conn).await,
            RouteState::Bound => self.edge.let_go(conn).await,
        };
        if !released {
            return self.state == RouteState::Bound;
        }
        self.room = (app.to_owned(), room.to_owned());
        if self.state == RouteState::Undecided && owner == Owner::Here {
            self.state = RouteState::Local;
            return false;
        }
        if self.state == RouteState::Undecided {
            // The connection was opened in the local hub, in no room: it forgets it.
            sig.hub.send(HubMsg::Closed { conn, clean: true }).await;
        }
        let (kill_tx, kill_rx) = oneshot::channel();
        *kill = Kill {
            rx: kill_rx,
            hub_gone: false,
        };
        match owner {
            Owner::Here => {
                let open = HubMsg::Open {
                    conn,
                    ip: self.ip.clone(),
                    at: self.at,
                    out: self.out.clone(),
                    kill: kill_tx,
                };
                sig.hub.send(open).await;
                self.state = RouteState::Local;
                false
            }
            Owner::Node(owner) => {
                let socket = Socketside {
                    conn,
                    app: app.to_owned(),
                    room: room.to_owned(),
                    ip: self.ip.clone(),
                    at: self.at,
                    out: self.out.clone(),
                    kill: kill_tx,
                };
                self.edge.bind(owner, socket).await;
                self.state = RouteState::Bound;
                true
            }
        }
    }
}

/// What the loop does after one event: go on, or end the connection (`clean`: with a close
/// handshake).
enum Step {
    Continue,
    End { clean: bool },
}

/// The connection's loop: write what the hub queues, read what the client sends. Returns
/// whether the connection ended cleanly.
async fn run<S>(
    sig: &Signaling,
    conn: ConnId,
    origin: Option<&str>,
    socket: &mut Socket<S>,
    (mut out_rx, kill_rx): (queue::Receiver<Outbound>, oneshot::Receiver<()>),
    mut route: Option<&mut Route>,
) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut out = Writer {
        kill: Kill {
            rx: kill_rx,
            hub_gone: false,
        },
        timeout: sig.write_timeout,
    };
    // The task of an idle connection is as large as the largest state of this loop, and
    // each member keeps one: the handlers of a frame and of a write (a decoded request on its
    // way to the hub, a write with its timeout; 2-3 KiB of state) are boxed for the time
    // they run, so that an idle connection holds only the wait below (heaptrack of
    // `rtcroom-bench idle`: docs/benchmarks.md).
    loop {
        let step = tokio::select! {
            biased;
            () = out.kill.killed() => Step::End { clean: false },
            item = out_rx.recv() => {
                Box::pin(write_queued(&mut out, socket, item, &mut out_rx)).await
            }
            incoming = socket.next() => {
                let route = route.as_deref_mut();
                Box::pin(on_incoming(sig, conn, origin, &mut out, socket, incoming, route)).await
            }
        };
        if let Step::End { clean } = step {
            return clean;
        }
    }
}

/// The hub's kill switch of this connection.
struct Kill {
    rx: oneshot::Receiver<()>,
    /// The hub went away (shutdown) and dropped the switch without firing it: only an
    /// explicit kill cuts the connection off, so the queued messages are still written.
    hub_gone: bool,
}

impl Kill {
    /// Resolves when the hub cuts the connection off; never once the hub is gone.
    async fn killed(&mut self) {
        if !self.hub_gone {
            if (&mut self.rx).await.is_ok() {
                return;
            }
            self.hub_gone = true;
        }
        std::future::pending::<()>().await;
    }
}

/// Writes to the client, each bounded: by `timeout`, and by the hub's kill.
struct Writer {
    kill: Kill,
    timeout: Duration,
}

impl Writer {
    /// Write `frames`; `false` when the connection is to end: the write failed, took longer
    /// than `[server] write_timeout_secs` (the client does not read), or the hub cut the
    /// client off meanwhile. A write given up part-way leaves a broken frame on the wire,
    /// so nothing may be written after a `false`.
    async fn write<S>(&mut self, socket: &mut Socket<S>, frames: &Frames) -> bool
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        tokio::select! {
            biased;
            () = self.kill.killed() => false,
            written = tokio::time::timeout(self.timeout, socket.write(frames)) => match written {
                Ok(Ok(())) => true,
                Ok(Err(_)) => false,
                Err(_) => {
                    metrics::metrics().write_timeouts.inc();
                    tracing::debug!("a write to a client took longer than [server] write_timeout_secs; closing");
                    false
                }
            },
        }
    }
}

/// Write `item` and whatever else is queued already in one write (a respOffer next to a
/// relay, a burst of candidates), up to BATCH bytes.
async fn write_queued<S>(
    out: &mut Writer,
    socket: &mut Socket<S>,
    item: Option<Outbound>,
    out_rx: &mut queue::Receiver<Outbound>,
) -> Step
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut frames = Frames::new();
    let mut close = None;
    // The hub dropped this connection's queue: nothing more will come to write.
    let mut hub_dropped_queue = false;
    let mut next = item;
    loop {
        match next {
            Some(Outbound::Msg(msg)) => frames.push_text(|out| msg.write_json(out)),
            Some(Outbound::Text(text)) => frames.push_text(|out| out.extend_from_slice(&text)),
            Some(Outbound::Close(reason)) => {
                close = Some(reason);
                break;
            }
            None => {
                hub_dropped_queue = true;
                break;
            }
        }
        if frames.len() >= BATCH {
            break;
        }
        match out_rx.try_recv() {
            Ok(item) => next = Some(item),
            Err(_) => break,
        }
    }
    if let Some(reason) = &close {
        frames.push_close(reason.code(), &reason.text());
    }
    if !frames.is_empty() && !out.write(socket, &frames).await {
        return Step::End { clean: false };
    }
    if close.is_some() {
        return Step::End { clean: true };
    }
    if hub_dropped_queue {
        return Step::End { clean: false };
    }
    Step::Continue
}

/// Hand a frame to the hub, answer a ping, echo a close.
async fn on_incoming<S>(
    sig: &Signaling,
    conn: ConnId,
    origin: Option<&str>,
    out: &mut Writer,
    socket: &mut Socket<S>,
    incoming: Option<Result<Incoming, ReadError>>,
    route: Option<&mut Route>,
) -> Step
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let sent = match incoming {
        Some(Ok(Incoming::Text(text))) => on_text(sig, conn, origin, out, text, route).await,
        Some(Ok(Incoming::Binary(len))) => {
            let at = std::time::Instant::now();
            metrics::received("invalid", len);
            match route {
                Some(r) if r.state == RouteState::Bound => {
                    r.edge
                        .frame(conn, Payload::Binary(len), Grant::Unchecked)
                        .await;
                    true
                }
                _ => {
                    let frame = Err(decode_binary(len, sig.max_frame));
                    to_hub(sig, conn, frame, Grant::Unchecked, at).await
                }
            }
        }
        Some(Ok(Incoming::Ping(payload))) => {
            let mut pong = Frames::default();
            pong.push_pong(&payload);
            out.write(socket, &pong).await
        }
        Some(Ok(Incoming::Close(code))) => {
            // Echo the close (RFC 6455 §5.5.1), with the client's code when it is one an
            // endpoint may send.
            let mut bye = Frames::default();
            let code = code
                .filter(|c| matches!(c, 1000..=1003 | 1007..=1011 | 3000..=4999))
                .unwrap_or(1000);
            bye.push_close(code, "");
            let _ = out.write(socket, &bye).await;
            return Step::End { clean: true };
        }
        Some(Err(ReadError::Protocol(v))) => {
            tracing::debug!(
                conn = conn.0,
                why = v.why,
                "closing a connection that broke RFC 6455"
            );
            let mut bye = Frames::default();
            bye.push_close(v.code, v.why);
            let _ = out.write(socket, &bye).await;
            false
        }
        Some(Err(ReadError::Io(e))) => {
            tracing::debug!(conn = conn.0, error = %e, "connection read failed");
            false
        }
        None => false,
    };
    if sent {
        Step::Continue
    } else {
        Step::End { clean: false }
    }
}

/// A text frame: decoded here, then to the local hub or, for a connection bound to another
/// node, to the room's owner as its text.
async fn on_text(
    sig: &Signaling,
    conn: ConnId,
    origin: Option<&str>,
    out: &mut Writer,
    text: Text,
    route: Option<&mut Route>,
) -> bool {
    let at = std::time::Instant::now();
    let (frame, grant) = decode_text(sig, &text, origin);
    let bound = match route {
        Some(r) => {
            let to_owner = r.goes_to_owner(sig, conn, &frame, &mut out.kill).await;
            to_owner.then_some(r)
        }
        None => None,
    };
    match bound {
        Some(r) => {
            // The owner decodes the text again; same-node rooms never pay for that. The
            // decoded frame shares the text's buffer: dropped first, the text is moved out
            // of the buffer rather than copied.
            drop(frame);
            r.edge
                .frame(conn, Payload::Text(text.into_string()), grant)
                .await;
            true
        }
        None => to_hub(sig, conn, frame, grant, at).await,
    }
}

/// Hand a frame to the hub; `false` once the hub is gone.
async fn to_hub(
    sig: &Signaling,
    conn: ConnId,
    frame: Result<Request, DecodeError>,
    grant: Grant,
    at: std::time::Instant,
) -> bool {
    let msg = HubMsg::Frame {
        conn,
        frame,
        grant,
        at,
    };
    sig.hub.send(msg).await
}

/// Decode a text frame (counted by its command) and check its token when it carries one.
fn decode_text(
    sig: &Signaling,
    text: &Text,
    origin: Option<&str>,
) -> (Result<Request, DecodeError>, Grant) {
    let text_str = text.as_str();
    let frame = decode_shared(text.bytes(), text_str, sig.max_frame);
    metrics::received(
        frame.as_ref().map_or("invalid", |r| r.command().as_str()),
        text_str.len(),
    );
    let grant = match &frame {
        Ok(req @ (Request::Join(_) | Request::UpdateToken(_))) => sig.tokens.check(req, origin),
        _ => Grant::Unchecked,
    };
    (frame, grant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signaling::token::NoTokenCheck;

    /// Every open connection keeps its task, and the task is as large as the largest state
    /// of `serve`: the frame and write handlers are boxed so that it stays the size of the
    /// wait (2-3 KiB more per member otherwise; docs/benchmarks.md). A handler made
    /// inline again, or a large value held across the wait, fails here.
    #[test]
    fn an_idle_connection_task_stays_small() {
        let (hub, _inbox) = Hub::unanswered();
        let sig = Arc::new(Signaling::new(
            hub,
            Arc::new(NoTokenCheck),
            65_536,
            16,
            10,
            Duration::from_secs(10),
        ));
        let (_client, io) = tokio::io::duplex(64);
        let task = serve(sig, Socket::new(io, 65_536), "127.0.0.1".into(), None, None);
        let size = std::mem::size_of_val(&task);
        assert!(size <= 768, "the connection task holds {size} bytes");
    }
}
