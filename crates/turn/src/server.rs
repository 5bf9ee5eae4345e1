//! Starting and stopping the embedded TURN server.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;
use turn::server::Server;
use turn::server::config::{ConnConfig, ServerConfig};

use crate::auth::RestAuth;
use crate::config::{ConfigError, TurnConfig};
use crate::conn::{Allocating, ClientConn, Listener, UserTable};
use crate::counters::{CounterSnapshot, Counters};
use crate::guard::{Guard, Limits, PeerPolicy};
use crate::nonce::NonceGate;
use crate::relay::{RelayAllocator, Relays};
use crate::stream::StreamHub;

/// Why the server did not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("turn server: {0}")]
    Turn(#[from] turn::Error),
    #[error("cannot run the turn thread: {0}")]
    Runtime(std::io::Error),
}

/// The listening socket with the configured buffer sizes. A buffer the kernel refuses to grow
/// is not fatal: the server still works, it only drops sooner under bursts.
fn listen(addr: SocketAddr, buffer_bytes: usize) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    let _ = socket.set_recv_buffer_size(buffer_bytes);
    let _ = socket.set_send_buffer_size(buffer_bytes);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// The UDP socket and, when TCP is on, the TCP listener. A TCP port of 0 asks for the port the
/// UDP socket got; when the UDP port is 0 as well, ports are tried until one is free for both
/// (a port free for UDP may be the local port of some TCP connection).
async fn bind_udp_and_tcp(
    cfg: &TurnConfig,
) -> Result<(UdpSocket, SocketAddr, Option<tokio::net::TcpListener>), TurnError> {
    const TRIES: u32 = 32;
    let mut tried = 0;
    loop {
        let listen_error = |addr| move |source| TurnError::Listen { addr, source };
        let socket =
            listen(cfg.listen, cfg.socket_buffer_bytes).map_err(listen_error(cfg.listen))?;
        let local_addr = socket.local_addr().map_err(listen_error(cfg.listen))?;
        let Some(mut tcp) = cfg.tcp_listen else {
            return Ok((socket, local_addr, None));
        };
        let any_port = tcp.port() == 0;
        if any_port {
            tcp.set_port(local_addr.port());
        }
        match tokio::net::TcpListener::bind(tcp).await {
            Ok(listener) => return Ok((socket, local_addr, Some(listener))),
            Err(e)
                if any_port
                    && cfg.listen.port() == 0
                    && e.kind() == std::io::ErrorKind::AddrInUse
                    && tried < TRIES =>
            {
                tried += 1;
            }
            Err(source) => return Err(TurnError::Listen { addr: tcp, source }),
        }
    }
}

/// A TCP listener (over TLS with `tls`) serving at most `max_connections` at a time.
async fn listen_stream(
    addr: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    max_connections: usize,
    counters: &Arc<Counters>,
    relays: &Arc<Relays>,
) -> Result<StreamHub, TurnError> {
    let listen_error = |source| TurnError::Listen { addr, source };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(listen_error)?;
    StreamHub::start(
        listener,
        tls,
        max_connections,
        Arc::clone(counters),
        Arc::clone(relays),
    )
    .map_err(listen_error)
}

/// The TCP listener (when bound) and the TLS listener (when configured) as packet sockets,
/// added to `listeners`; their addresses.
async fn stream_listeners(
    cfg: &TurnConfig,
    tcp: Option<tokio::net::TcpListener>,
    udp_addr: SocketAddr,
    counters: &Arc<Counters>,
    listeners: &mut Vec<(Listener, Arc<Relays>)>,
) -> Result<(Option<SocketAddr>, Option<SocketAddr>), TurnError> {
    let tcp_addr = match tcp {
        Some(listener) => {
            let addr = listener.local_addr().map_err(|source| TurnError::Listen {
                addr: udp_addr,
                source,
            })?;
            let relays = Arc::new(Relays::default());
            let hub = StreamHub::start(
                listener,
                None,
                cfg.max_connections,
                Arc::clone(counters),
                Arc::clone(&relays),
            )
            .map_err(|source| TurnError::Listen { addr, source })?;
            let local = hub.local_addr();
            listeners.push((Listener::Stream(hub), relays));
            Some(local)
        }
        None => None,
    };
    let tls_addr = match &cfg.tls {
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&tls.config));
            let relays = Arc::new(Relays::default());
            let hub = listen_stream(
                tls.listen,
                Some(acceptor),
                cfg.max_connections,
                counters,
                &relays,
            )
            .await?;
            let local = hub.local_addr();
            listeners.push((Listener::Stream(hub), relays));
            Some(local)
        }
        None => None,
    };
    Ok((tcp_addr, tls_addr))
}

/// What the listeners of one server share.
struct Shared<'a> {
    cfg: &'a TurnConfig,
    relay_ip: IpAddr,
    counters: &'a Arc<Counters>,
    peers: &'a Arc<PeerPolicy>,
    users: &'a Arc<UserTable>,
}

impl Shared<'_> {
    /// A listener as the crate takes it: the socket with its gate and guard, and its
    /// allocator.
    fn conn_config(&self, socket: Listener, relays: Arc<Relays>) -> std::io::Result<ConnConfig> {
        let cfg = self.cfg;
        let allocating = Allocating::default();
        let local = socket.local_addr()?;
        let conn = Arc::new(ClientConn {
            socket,
            counters: Arc::clone(self.counters),
            realm: cfg.realm.clone(),
            gate: Mutex::new(NonceGate::default()),
            guard: Guard {
                secret: cfg.secret.clone().into_bytes(),
                peers: PeerPolicy::clone(self.peers),
                limits: Limits {
                    max_allocations_per_user: cfg.max_allocations_per_user,
                    max_credential_lifetime_secs: cfg.max_credential_lifetime_secs,
                },
            },
            users: Arc::clone(self.users),
            allocating: Arc::clone(&allocating),
            relays,
            binding: Mutex::new(None),
            local,
        });
        Ok(ConnConfig {
            conn: Arc::clone(&conn) as _,
            relay_addr_generator: Box::new(RelayAllocator {
                bind_ip: cfg.listen.ip(),
                relay_ip: self.relay_ip,
                ports: cfg.relay_ports,
                peers: Arc::clone(self.peers),
                max_allocations: cfg.max_allocations as u64,
                bytes_per_sec: cfg.allocation_bytes_per_sec,
                counters: Arc::clone(self.counters),
                users: Arc::clone(self.users),
                listener: conn,
                allocating,
            }),
        })
    }
}

/// The embedded STUN/TURN server (UDP, and TCP and TLS when configured).
#[derive(Debug)]
pub struct TurnServer;

impl TurnServer {
    /// Bind the listening socket and start serving on the current Tokio runtime: the `turn`
    /// crate spawns a task for the listener and one per allocation.
    pub async fn start(cfg: TurnConfig) -> Result<TurnHandle, TurnError> {
        let serving = Self::serve(cfg).await?;
        Ok(TurnHandle {
            serving,
            thread: None,
        })
    }

    /// Start on a thread of its own running a single-threaded Tokio runtime: the recommended
    /// way to run it. On a multi-threaded runtime a relayed datagram often wakes a task that
    /// sits on another worker; in `bench/turn_vs_coturn.sh` at 10,000 messages/s that cost
    /// about twice the context switches per datagram and 1.36x coturn's CPU per datagram on
    /// two workers, against 1.20x on its own thread (both before the ChannelData fast path).
    /// It also keeps relaying off the signaling runtime.
    pub fn start_on_own_thread(cfg: TurnConfig) -> Result<TurnHandle, TurnError> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let join = std::thread::Builder::new()
            .name("rtcroom-turn".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(TurnError::Runtime(e)));
                        return;
                    }
                };
                rt.block_on(async move {
                    let _ = ready_tx.send(Self::serve(cfg).await);
                    // Serve until the handle says stop (or is dropped).
                    let _ = stop_rx.await;
                });
            })
            .map_err(TurnError::Runtime)?;
        let serving = ready_rx
            .recv()
            .map_err(|_| TurnError::Runtime(std::io::Error::other("turn thread ended early")))??;
        Ok(TurnHandle {
            serving,
            thread: Some((stop_tx, join)),
        })
    }

    async fn serve(cfg: TurnConfig) -> Result<Serving, TurnError> {
        cfg.validate()?;
        let relay_ip = cfg.relay_ip()?;
        let counters = Arc::new(Counters::default());
        let (socket, local_addr, tcp) = bind_udp_and_tcp(&cfg).await?;
        let peers = Arc::new(PeerPolicy::new(
            cfg.peers,
            &[cfg.listen.ip(), relay_ip],
            cfg.relay_ports,
        ));
        let users = Arc::new(UserTable::default());
        // Each listener with the relays of its allocations.
        let mut listeners = vec![(Listener::Udp(socket), Arc::new(Relays::default()))];
        let (tcp_addr, tls_addr) =
            stream_listeners(&cfg, tcp, local_addr, &counters, &mut listeners).await?;
        // One read loop per listener in the crate, each with its allocator; the quotas, the
        // peer policy and the counters are the same for all.
        let shared = Shared {
            cfg: &cfg,
            relay_ip,
            counters: &counters,
            peers: &peers,
            users: &users,
        };
        let conn_configs = listeners
            .into_iter()
            .map(|(socket, relays)| shared.conn_config(socket, relays))
            .collect::<std::io::Result<_>>()
            .map_err(|source| TurnError::Listen {
                addr: local_addr,
                source,
            })?;
        let server = Server::new(ServerConfig {
            conn_configs,
            realm: cfg.realm,
            auth_handler: Arc::new(RestAuth {
                secret: cfg.secret.into_bytes(),
                counters: Arc::clone(&counters),
            }),
            // Zero means the crate's default of 10 minutes, RFC 5766's channel lifetime.
            channel_bind_timeout: std::time::Duration::ZERO,
            alloc_close_notify: None,
        })
        .await?;
        Ok(Serving {
            server,
            counters,
            users,
            local_addr,
            tcp_addr,
            tls_addr,
            max_allocations: cfg.max_allocations as u64,
        })
    }
}

/// What a started server is made of.
struct Serving {
    server: Server,
    counters: Arc<Counters>,
    users: Arc<UserTable>,
    local_addr: SocketAddr,
    tcp_addr: Option<SocketAddr>,
    tls_addr: Option<SocketAddr>,
    max_allocations: u64,
}

/// A running embedded TURN server.
pub struct TurnHandle {
    serving: Serving,
    /// The server's own thread, when started with [`TurnServer::start_on_own_thread`].
    thread: Option<(
        tokio::sync::oneshot::Sender<()>,
        std::thread::JoinHandle<()>,
    )>,
}

impl std::fmt::Debug for TurnHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnHandle")
            .field("local_addr", &self.serving.local_addr)
            .field("counters", &self.serving.counters.snapshot())
            .finish_non_exhaustive()
    }
}

impl TurnHandle {
    pub fn counters(&self) -> CounterSnapshot {
        self.serving.counters.snapshot()
    }

    /// The listening address (with the real port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.serving.local_addr
    }

    /// The TCP listener's address, when there is one.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.serving.tcp_addr
    }

    /// The TLS listener's address, when there is one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.serving.tls_addr
    }

    /// Live allocations.
    pub fn allocations(&self) -> u64 {
        self.serving.counters.snapshot().allocations_active
    }

    /// Live allocations of one user (the uid of the REST username `"<expiry>:<uid>"`), which
    /// `max_allocations_per_user` bounds.
    pub fn allocations_of(&self, uid: &str) -> usize {
        self.serving.users.live_of(uid)
    }

    /// Whether `max_allocations` are live, so that the next Allocate gets 508: a relay that
    /// should not be handed to new calls (readiness).
    pub fn is_full(&self) -> bool {
        self.allocations() >= self.serving.max_allocations
    }

    /// Close every allocation and stop listening (and end the server's own thread).
    pub async fn shutdown(self) -> Result<(), TurnError> {
        self.serving.server.close().await?;
        if let Some((stop, join)) = self.thread {
            let _ = stop.send(());
            // The thread ends as soon as it sees the stop; joining it off the async workers.
            tokio::task::spawn_blocking(move || join.join())
                .await
                .map_err(|e| TurnError::Runtime(std::io::Error::other(e)))?
                .map_err(|_| TurnError::Runtime(std::io::Error::other("turn thread panicked")))?;
        }
        Ok(())
    }
}
