//! `rtcroom`: the one binary of the platform.
//!
//! The modules, from the bottom of the import graph up (`tests/layering.rs` holds that no
//! two import each other, directly or around a circle):
//! `clock`, `tls` (certificates from files, for the HTTP and TURN listeners), `peer` (a request's client address), `auth` and `config` (no feature below them), `ops` (logs, metrics, alerts,
//! mail, monitor), `signaling` (the hub and the connections), `state` (what HTTP handlers
//! share), the features `records` and `ice`, `http` (the router), and `commands` (one file
//! per command, the start and stop order of `serve`).

mod auth;
mod clock;
mod cluster;
mod commands;
mod config;
mod geoip;
mod http;
mod ice;
mod ops;
mod peer;
mod records;
mod reload;
mod signaling;
mod state;
mod tls;

use clap::Parser;
use std::process::ExitCode;

// mimalloc instead of glibc's malloc: messages are allocated on the hub's thread and freed on
// the connection's, and glibc's per-arena locks made those cross-thread frees contend
// (futex waits in the relay profile; docs/benchmarks.md). The `system-alloc` feature, for
// heap profilers only, leaves the system allocator in place.
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Errors end the process with status 1, as returning them from `main` would; a command that
/// needs call records while they are off ends with status 2, so that scripts can tell a
/// setting from a failure. Output cut short by its reader (`rtcroom records ... | head`)
/// ends quietly with status 0.
fn main() -> ExitCode {
    use std::io::Write as _;
    no_huge_pages();
    match commands::run(commands::cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if commands::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if e.is::<records::RecordsOff>() => {
            let _ = writeln!(std::io::stderr(), "Error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            let _ = write!(std::io::stderr(), "{}", commands::error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// Transparent huge pages off for this process. mimalloc (built without its own request for
/// them, `no_thp`) reserves large aligned regions, and where the kernel backs those with
/// 2 MiB pages (`enabled = always`, or `madvise` with mimalloc's default request) every
/// region a thread touches costs 2 MiB of RSS however little of it is used:
/// `rtcroom-bench idle --members 6000` measured 13 KiB per member with them and 8.8 without
/// (docs/benchmarks.md). Signaling's memory is many small objects, which gain nothing from
/// large pages.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        // Not fatal: the process only uses more memory.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "cannot turn transparent huge pages off for this process: {e}"
        );
    }
}
