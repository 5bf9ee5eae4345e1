//! The embedded TURN server as a stand-alone process, for the benchmark against coturn
//! (`bench/turn_vs_coturn.sh`) and for trying it by hand:
//!
//! ```text
//! cargo run --release -p rtcroom-turn --example turn_server -- \
//!     127.0.0.1:3478 49152-65535 SECRET [--allow-loopback-peers] [--threads N] \
//!     [--allocations-per-user N] [--bytes-per-sec N]
//! ```
//!
//! By default the server runs on its own thread (`TurnServer::start_on_own_thread`); with
//! `--threads N` it runs on a multi-threaded runtime of N workers instead, for comparison. It
//! prints its counters once a second on stdout and runs until killed. `--allocations-per-user`
//! and `--bytes-per-sec` override `max_allocations_per_user` and `allocation_bytes_per_sec`
//! (0: no limit).

use std::time::Duration;

use rtcroom_turn::{PeerFilter, TurnConfig, TurnServer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, ports, secret, ..] = args.as_slice() else {
        return Err(
            "usage: turn_server LISTEN MIN-MAX SECRET [--allow-loopback-peers] \
                    [--threads N] [--allocations-per-user N] [--bytes-per-sec N]"
                .into(),
        );
    };
    let mut cfg = TurnConfig::new(secret.clone());
    cfg.listen = listen.parse()?;
    cfg.relay_ports = ports.parse()?;
    cfg.peers = PeerFilter {
        allow_loopback: args.iter().any(|a| a == "--allow-loopback-peers"),
        allow_private: false,
    };
    let option = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|n| n.parse::<u64>())
            .transpose()
    };
    let threads = option("--threads")?.map(|n| n as usize);
    if let Some(n) = option("--allocations-per-user")? {
        cfg.max_allocations_per_user = n as usize;
    }
    if let Some(n) = option("--bytes-per-sec")? {
        cfg.allocation_bytes_per_sec = n;
    }
    let rt = match threads {
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build()?,
        None => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
    };
    rt.block_on(async {
        let turn = match threads {
            Some(_) => TurnServer::start(cfg).await?,
            None => TurnServer::start_on_own_thread(cfg)?,
        };
        println!("listening {}", turn.local_addr());
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            println!("{:?}", turn.counters());
        }
    })
}
