//! Starting and stopping the embedded TURN server.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;
use turn::server::Server;
use turn::server::config::{ConnConfig, ServerConfig};

use crate::auth::RestAuth;
use crate::config::{ConfigError, TurnConfig};
use crate::conn::{ClientConn, RelayAllocator};
use crate::counters::{CounterSnapshot, Counters};
use crate::nonce::NonceGate;

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

/// The embedded STUN/TURN server (UDP).
#[derive(Debug)]
pub struct TurnServer;

impl TurnServer {
    /// Bind the listening socket and start serving on the current Tokio runtime: the `turn`
    /// crate spawns a task for the listener and one per allocation.
    pub async fn start(cfg: TurnConfig) -> Result<TurnHandle, TurnError> {
        let (server, counters, local_addr) = Self::serve(cfg).await?;
        Ok(TurnHandle {
            server,
            counters,
            local_addr,
            thread: None,
        })
    }

    /// Start on a thread of its own running a single-threaded Tokio runtime. This is the
    /// cheaper way to run it: on a multi-threaded runtime every relayed datagram wakes a task
    /// that is often on another worker, and those wakeups made up most of the difference to
    /// coturn in `bench/turn_vs_coturn.sh` (1.1–1.4× coturn's CPU per datagram on two
    /// workers, 0.9× on its own thread). It also keeps relaying off the signaling runtime.
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
        let (server, counters, local_addr) = ready_rx
            .recv()
            .map_err(|_| TurnError::Runtime(std::io::Error::other("turn thread ended early")))??;
        Ok(TurnHandle {
            server,
            counters,
            local_addr,
            thread: Some((stop_tx, join)),
        })
    }

    async fn serve(cfg: TurnConfig) -> Result<(Server, Arc<Counters>, SocketAddr), TurnError> {
        cfg.validate()?;
        let relay_ip = cfg.relay_ip()?;
        let counters = Arc::new(Counters::default());
        let socket =
            listen(cfg.listen, cfg.socket_buffer_bytes).map_err(|source| TurnError::Listen {
                addr: cfg.listen,
                source,
            })?;
        let local_addr = socket.local_addr().map_err(|source| TurnError::Listen {
            addr: cfg.listen,
            source,
        })?;
        let server = Server::new(ServerConfig {
            conn_configs: vec![ConnConfig {
                conn: Arc::new(ClientConn {
                    socket,
                    counters: Arc::clone(&counters),
                    realm: cfg.realm.clone(),
                    gate: Mutex::new(NonceGate::default()),
                }),
                relay_addr_generator: Box::new(RelayAllocator {
                    bind_ip: cfg.listen.ip(),
                    relay_ip,
                    ports: cfg.relay_ports,
                    filter: cfg.peers,
                    max_allocations: cfg.max_allocations as u64,
                    counters: Arc::clone(&counters),
                }),
            }],
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
        Ok((server, counters, local_addr))
    }
}

/// A running embedded TURN server.
pub struct TurnHandle {
    server: Server,
    counters: Arc<Counters>,
    local_addr: SocketAddr,
    /// The server's own thread, when started with [`TurnServer::start_on_own_thread`].
    thread: Option<(
        tokio::sync::oneshot::Sender<()>,
        std::thread::JoinHandle<()>,
    )>,
}

impl std::fmt::Debug for TurnHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnHandle")
            .field("local_addr", &self.local_addr)
            .field("counters", &self.counters.snapshot())
            .finish_non_exhaustive()
    }
}

impl TurnHandle {
    pub fn counters(&self) -> CounterSnapshot {
        self.counters.snapshot()
    }

    /// The listening address (with the real port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Close every allocation and stop listening (and end the server's own thread).
    pub async fn shutdown(self) -> Result<(), TurnError> {
        self.server.close().await?;
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
