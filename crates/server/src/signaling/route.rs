//! Where a connection's frames go when the room it joins lives on another node: the seam
//! between the connection task and the cluster (`crate::cluster` implements [`Edge`]; this
//! module names only what a connection needs, so `signaling` imports nothing of the
//! cluster). Without `[cluster]` there is no `Edge` and every frame goes to this node's hub.

use super::hub::Outbound;
use super::queue;
use futures_util::future::BoxFuture;
use rtcroom_core::{ConnId, Grant};
use tokio::sync::oneshot;

/// Who serves a `join`: this node's hub, or the node that owns the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Here,
    /// Another node, by its id.
    Node(String),
}

/// A connection's socket seen by the cluster: where its messages go and how to cut it off.
#[derive(Debug)]
pub struct Socketside {
    pub conn: ConnId,
    /// The app and room id (key text) of the join that bound it.
    pub app: String,
    pub room: String,
    pub ip: String,
    pub at: Option<rtcroom_ice::GeoPoint>,
    pub out: queue::Sender<Outbound>,
    /// Fired to cut the connection off at once.
    pub kill: oneshot::Sender<()>,
}

/// What a bound connection's client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Text(String),
    /// A binary message of this many bytes (signaling is text only: the owner refuses it).
    Binary(usize),
}

/// The cluster as a connection task sees it.
pub trait Edge: Send + Sync + std::fmt::Debug {
    /// The owner of room `room` of app `app` (claiming it for this node when nobody owns it);
    /// `Here` too when the owner cannot be asked (Redis away): the room is served locally.
    fn owner_of<'a>(&'a self, app: &'a str, room: &'a str) -> BoxFuture<'a, Owner>;
    /// From now on the connection is served by `owner`: it is opened there, and what the
    /// owner sends it comes back to `socket.out`.
    fn bind<'a>(&'a self, owner: String, socket: Socketside) -> BoxFuture<'a, ()>;
    /// A frame of a bound connection, as its text and the token check done here.
    fn frame<'a>(&'a self, conn: ConnId, payload: Payload, grant: Grant) -> BoxFuture<'a, ()>;
    /// A bound connection's socket closed.
    fn closed<'a>(&'a self, conn: ConnId, clean: bool) -> BoxFuture<'a, ()>;
    /// Who serves bound connection `conn` now (`Here`: this node's hub, after it took the
    /// room over); `None` when it is not bound.
    fn serving(&self, conn: ConnId) -> Option<Owner>;
    /// A bound connection's `join` names a room another node serves: ask the node serving
    /// it to let it go ([`super::hub::HubMsg::LetGo`]). `true` once that node forgot it and
    /// everything it sent the connection has been delivered to its queue; this node forgets
    /// the binding then. `false`: its member is still in a room there (or no answer came).
    fn let_go<'a>(&'a self, conn: ConnId) -> BoxFuture<'a, bool>;
}
