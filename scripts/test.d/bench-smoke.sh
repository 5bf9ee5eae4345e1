#!/usr/bin/env bash
# A few seconds of real load through the whole call flow against the real server: a few
# pairs join, call (offer/answer with SDPs of a few KB, candidates, peerConnected), keep
# alive, report stats, exchange offer/answer round trips in a closed loop, and leave.
# Fails when the bench saw any error, a dropped member, or relayed nothing.
# Builds the two debug binaries (cheap after `cargo test --workspace`: only the binaries
# themselves are left to link).
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-target}"
server="$target/debug/rtcroom"
bench="$target/debug/rtcroom-bench"
cargo build --locked --bin rtcroom --bin rtcroom-bench
for bin in "$server" "$bench"; do
  if [ ! -x "$bin" ]; then
    echo "bench-smoke: $bin is missing: run 'cargo test --workspace' (or cargo build) first" >&2
    exit 1
  fi
done
# The bench starts the server itself (on 127.0.0.1, port 0), stops it by its pid, and
# stops by itself: 4 pairs, 0.5 s warmup, 3 s window, setup limited to 30 s.
out="$(timeout 120 "$bench" smoke --spawn "$server" --pairs 4 --duration 3 --setup-timeout 30)"
echo "$out"
# The bench exits non-zero on errors already; check the relayed count here as well.
relayed="$(printf '%s\n' "$out" | tail -n 1 | sed -n 's/.*"relayed":\([0-9]*\).*/\1/p')"
if [ -z "$relayed" ] || [ "$relayed" -eq 0 ]; then
  echo "bench-smoke: nothing was relayed" >&2
  exit 1
fi
echo "bench-smoke: ok ($relayed messages relayed)"

# The raw relay that acknowledges every frame (the floor docs/benchmarks.md compares with):
# every frame sent must come back twice, once relayed to the peer and once as the ack.
raw="$(timeout 60 "$bench" relay --target raw-ack --pairs 4 --warmup 0.5 --duration 2 --quiet)"
echo "$raw"
sent="$(printf '%s\n' "$raw" | sed -n 's/.*"frames_sent":\([0-9]*\).*/\1/p')"
received="$(printf '%s\n' "$raw" | sed -n 's/.*"frames_received":\([0-9]*\).*/\1/p')"
if [ -z "$sent" ] || [ "$sent" -eq 0 ] || [ $((received * 10)) -lt $((sent * 19)) ]; then
  echo "bench-smoke: the acknowledging raw relay did not answer each frame (sent $sent, received $received)" >&2
  exit 1
fi
echo "bench-smoke: raw-ack ok ($sent frames sent, $received received)"

# Two cluster nodes on a private redis-server (the bench starts and stops it by its pid),
# each pair's members one per node: every relayed message crosses the Redis bus.
split="$(timeout 120 "$bench" smoke --spawn "$server" --placement split --pairs 4 --duration 2 --setup-timeout 30 --quiet)"
echo "$split"
relayed="$(printf '%s\n' "$split" | tail -n 1 | sed -n 's/.*"relayed":\([0-9]*\).*/\1/p')"
if [ -z "$relayed" ] || [ "$relayed" -eq 0 ]; then
  echo "bench-smoke: nothing was relayed across the two cluster nodes" >&2
  exit 1
fi
echo "bench-smoke: cluster split ok ($relayed messages relayed across nodes)"
