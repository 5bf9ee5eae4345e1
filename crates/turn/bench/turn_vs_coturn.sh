#!/usr/bin/env bash
# The embedded TURN server against coturn, side by side in one run on this machine, under the
# same turnutils_uclient load relayed to a turnutils_peer echo on 127.0.0.1.
#
# For each server and run:
# - loss: uclient's "Total lost packets";
# - CPU per relayed datagram: the server's utime+stime from /proc/PID/stat over the run,
#   divided by the datagrams it relayed (each message goes to the peer and its echo comes back:
#   two datagrams);
# - RSS per allocation: peak VmRSS during the run minus VmRSS before it, over the allocations
#   the run opened (allocations of earlier runs stay alive, so later runs measure growth);
# - drops: datagrams the kernel dropped for a full receive buffer (/proc/net/udp) on the
#   server's sockets and on the peer's, which says who lost what.
# Runs alternate between the servers; the summary gives the median and range of each figure.
#
# Usage: crates/turn/bench/turn_vs_coturn.sh [CLIENTS] [MESSAGES] [BYTES] [INTERVAL_MS] [RUNS]
# Default: 100 clients, 500 messages each, 1200 bytes, every 20 ms, 3 runs.
# Needs coturn's tools: scripts/deps/ice.sh installs them.
set -euo pipefail

CLIENTS=${1:-100}
MESSAGES=${2:-500}
BYTES=${3:-1200}
INTERVAL=${4:-20}
RUNS=${5:-3}
SECRET=bench-secret
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
HELP="python3 $HERE/bench_util.py"

for t in turnserver turnutils_uclient turnutils_peer; do
    command -v "$t" >/dev/null || { echo "$t missing: run scripts/deps/ice.sh" >&2; exit 1; }
done

cargo build --quiet --release -p rtcroom-turn --example turn_server --manifest-path "$ROOT/Cargo.toml"
EMBEDDED=$CARGO_TARGET_DIR/release/examples/turn_server

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

PEER_PORT=$($HELP free-port)
turnutils_peer -L 127.0.0.1 -p "$PEER_PORT" >/dev/null 2>&1 &
PIDS+=($!)

COTURN_PORT=$($HELP free-port)
COTURN_RELAYS="44000 45999"
turnserver -n --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 --listening-port="$COTURN_PORT" \
    --use-auth-secret --static-auth-secret="$SECRET" --realm=test --no-tls --no-dtls \
    --allow-loopback-peers --no-cli --min-port=44000 --max-port=45999 \
    --log-file=stdout --simple-log --pidfile="$WORK/coturn.pid" >"$WORK/coturn.log" 2>&1 &
COTURN_PID=$!
PIDS+=("$COTURN_PID")

EMBEDDED_PORT=$($HELP free-port)
EMBEDDED_RELAYS="46000 47999"
# EMBEDDED_ARGS="--threads 2" runs it on a multi-threaded runtime instead of its own thread.
# shellcheck disable=SC2086
# uclient makes every allocation as one user ("bench"): no per-user quota, as in coturn's
# default.
"$EMBEDDED" "127.0.0.1:$EMBEDDED_PORT" 46000-47999 "$SECRET" --allow-loopback-peers \
    --allocations-per-user 100000 ${EMBEDDED_ARGS:-} >"$WORK/embedded.log" 2>&1 &
EMBEDDED_PID=$!
PIDS+=("$EMBEDDED_PID")
$HELP wait-listening "$COTURN_PORT"
$HELP wait-listening "$EMBEDDED_PORT"
sleep 1

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# One load run against one server; appends its figures to $WORK/results and prints them.
run_one() {
    local name=$1 pid=$2 port=$3 lo=$4 hi=$5
    local rss0 cpu0 peak drops0 pdrops0
    drops0=$($HELP drops "$port" "$lo" "$hi")
    pdrops0=$($HELP drops "$PEER_PORT" 1 0)
    rss0=$(rss_kb "$pid")
    cpu0=$(cpu_ticks "$pid")
    peak=$rss0
    turnutils_uclient -c -X -m "$CLIENTS" -n "$MESSAGES" -l "$BYTES" -z "$INTERVAL" \
        -e 127.0.0.1 -r "$PEER_PORT" -u bench -W "$SECRET" -p "$port" 127.0.0.1 \
        >"$WORK/uclient" 2>&1 &
    local uc=$!
    while kill -0 "$uc" 2>/dev/null; do
        local r
        r=$(rss_kb "$pid")
        ((r > peak)) && peak=$r
        sleep 0.2
    done
    wait "$uc" || { echo "uclient against $name failed:" >&2; tail -5 "$WORK/uclient" >&2; exit 1; }
    $HELP figures "$name" "$WORK/uclient" "$cpu0" "$(cpu_ticks "$pid")" "$(getconf CLK_TCK)" \
        "$rss0" "$peak" "$((CLIENTS * 2))" \
        "$(($($HELP drops "$port" "$lo" "$hi") - drops0))" \
        "$(($($HELP drops "$PEER_PORT" 1 0) - pdrops0))" | tee -a "$WORK/results"
}

echo "load: $CLIENTS clients x $MESSAGES messages of $BYTES bytes every $INTERVAL ms, $RUNS runs"
$HELP header
for run in $(seq 1 "$RUNS"); do
    # Alternate the order so that neither server always runs second.
    if ((run % 2)); then order="coturn embedded"; else order="embedded coturn"; fi
    for name in $order; do
        if [ "$name" = coturn ]; then
            # shellcheck disable=SC2086
            run_one coturn "$COTURN_PID" "$COTURN_PORT" $COTURN_RELAYS
        else
            # shellcheck disable=SC2086
            run_one embedded "$EMBEDDED_PID" "$EMBEDDED_PORT" $EMBEDDED_RELAYS
        fi
        sleep 1
    done
done
$HELP summary "$WORK/results"
