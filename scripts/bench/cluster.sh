#!/usr/bin/env bash
# One node without [cluster] next to a two-node cluster (private redis-server, two rtcroom
# nodes) with each pair's members on one node (same) and one per node (split), under the
# same loads, interleaved, repeated. Every load starts its own processes on 127.0.0.1 and
# stops them by pid; every load is bounded in count and time. Call records are off in every
# configuration (a cluster refuses SQLite; off keeps the three comparable).
#
#   scripts/bench/cluster.sh [-r REPEATS] [-o OUTDIR] [-p] [-w THREADS]
#     -p    pin: the load generator on CPU 0, the nodes and Redis on the other CPUs (taskset)
#     -w    [server] worker_threads of every node, the single one included (default 0: one
#           per CPU core)
#     RTCROOM_BIN=path  the server to measure (default: the release build of this tree)
#
# Writes OUTDIR/results.jsonl (one JSON line per load, with the machine's load average in
# "uptime") and OUTDIR/summary.md (medians, by scripts/bench/cluster_summary.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/lib.sh
repeats=2
out=""
pin=""
workers=0
while getopts "r:o:pw:" opt; do
  case "$opt" in
    r) repeats="$OPTARG" ;;
    o) out="$OPTARG" ;;
    p) pin=1 ;;
    w) workers="$OPTARG" ;;
    *) usage ;;
  esac
done
target="${CARGO_TARGET_DIR:-target}"
out="${out:-$target/bench-cluster-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
if [ -z "${RTCROOM_BIN:-}" ]; then
  cargo build --release -p rtcroom -p rtcroom-bench >&2
  RTCROOM_BIN="$target/release/rtcroom"
fi
bench="${BENCH_BIN:-$target/release/rtcroom-bench}"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
results="$out/results.jsonl"
: >"$results"
pin_cpus "$pin"

run() { # config scenario args...
  local config="$1"
  shift
  local extra=()
  case "$config" in
    single) ;;
    same) extra=(--placement same) ;;
    split) extra=(--placement split) ;;
  esac
  local load line
  load="$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "== $config $* (load $load)" >&2
  if line="$(timeout 300 "${pinned[@]}" "$bench" "$@" --spawn "$RTCROOM_BIN" "${extra[@]}" "${bench_pin[@]}" \
    --server-env RTCROOM_DATABASE_URL=off --server-env "RTCROOM_SERVER_WORKER_THREADS=$workers" \
    --label "$config" --quiet)"; then :; fi
  if [ -n "$line" ]; then
    printf '%s\n' "$line" | python3 -c 'import json,sys
j=json.loads(sys.stdin.read()); j["uptime"]=sys.argv[1]; j["pinned"]=bool(sys.argv[2]); print(json.dumps(j))' "$load" "$pin" >>"$results"
  else
    echo "   (no result)" >&2
  fi
}

for rep in $(seq 1 "$repeats"); do
  echo "# repetition $rep of $repeats" >&2
  for config in single same split; do
    run "$config" rate --pairs 1000 --rate 10
  done
  for config in single same split; do
    run "$config" relay --pairs 100
  done
done
python3 scripts/bench/cluster_summary.py "$results" | tee "$out/summary.md"
echo "results: $results" >&2
