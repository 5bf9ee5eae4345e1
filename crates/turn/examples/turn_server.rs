//! The embedded TURN server as a stand-alone process, for the benchmark against coturn
//! (`bench/turn_vs_coturn.sh`) and for trying it by hand:
//!
//! ```text
//! cargo run --release -p rtcroom-turn --example turn_server -- \
//!     127.0.0.1:3478 49152-65535 SECRET [--allow-loopback-peers] [--threads N]
//! ```
//!
//! It prints its counters once a second on stdout and runs until killed.

use std::time::Duration;

use rtcroom_turn::{PeerFilter, TurnConfig, TurnServer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, ports, secret, ..] = args.as_slice() else {
        return Err(
            "usage: turn_server LISTEN MIN-MAX SECRET [--allow-loopback-peers] \
                    [--threads N]"
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
    let threads = args
        .iter()
        .position(|a| a == "--threads")
        .and_then(|i| args.get(i + 1))
        .map_or(Ok(2), |n| n.parse::<usize>())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let turn = TurnServer::start(cfg).await?;
        println!("listening {}", turn.local_addr());
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            println!("{:?}", turn.counters());
        }
    })
}
