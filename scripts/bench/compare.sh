#!/usr/bin/env bash
# rtcroom vs PeerJS server 1.0.2 (and the bench's raw relay, the floor of a WebSocket relay
# on tokio + tungstenite, bare and acknowledging each frame as rtcroom's respOffer does) under
# the same loads, in one run, repeated. Every load starts its
# own server on 127.0.0.1 and stops it; every load is bounded in count and time.
#
#   scripts/bench/compare.sh [-r REPEATS] [-o OUTDIR] [-s SETS] [-l LABEL] [-p]
#     -p    pin: the load generator on CPU 0, every server on the other CPUs (taskset), so
#           that the load and the server under test never take each other's CPU
#     SETS: comma-separated among goals (default), growth, rates (only the fixed-rate loads),
#           cpu (only the goals' two CPU loads: 100 pairs closed loop, 1,000 pairs x 10/s),
#           memory (idle members of rtcroom, 6,000 alone, in rooms of two, and after a call),
#           records (2,000 quality rows/s to SQLite, and the same load with records off)
#     RTCROOM_BIN=path  the server to measure (default: the release build of this tree)
#     RTCROOM_VARIANTS="name=path name=path"  several rtcroom builds, each run in turn and
#                       labelled by its name (instead of RTCROOM_BIN)
#
# Writes OUTDIR/results.jsonl (one JSON line per load) and OUTDIR/summary.md (medians and
# ranges, by scripts/bench/summarize.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/lib.sh
repeats=3
out=""
sets="goals"
label="${LABEL:-}"
pin=""
while getopts "r:o:s:l:p" opt; do
  case "$opt" in
    r) repeats="$OPTARG" ;;
    o) out="$OPTARG" ;;
    s) sets="$OPTARG" ;;
    l) label="$OPTARG" ;;
    p) pin=1 ;;
    *) usage ;;
  esac
done
target="${CARGO_TARGET_DIR:-target}"
out="${out:-$target/bench-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
if [ -z "${RTCROOM_BIN:-}" ] && [ -z "${RTCROOM_VARIANTS:-}" ]; then
  cargo build --release -p rtcroom -p rtcroom-bench >&2
  RTCROOM_BIN="$target/release/rtcroom"
fi
variants="${RTCROOM_VARIANTS:-rtcroom=$RTCROOM_BIN}"
ours=""
declare -A bin_of
for v in $variants; do
  bin_of["${v%%=*}"]="${v#*=}"
  ours="$ours ${v%%=*}"
done
bench="${BENCH_BIN:-$target/release/rtcroom-bench}"
peerjs="$(scripts/bench/peerjs.sh)"

# As many open files as this machine allows (both processes need one per connection).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fds="$(ulimit -n)"
# The idle load: 50,000 members, or as many as the open-file limit allows.
idle=50000
if [ "$fds" != unlimited ] && [ "$fds" -lt $((idle + 1000)) ]; then
  idle=$(( (fds - 1000) / 1000 * 1000 ))
fi
big=10000
if [ "$fds" != unlimited ] && [ "$fds" -lt $((2 * big + 1000)) ]; then
  big=$(( (fds - 1000) / 2000 * 1000 ))
fi

# -p: the bench on CPU 0, the servers on the rest.
pin_cpus "$pin"

results="$out/results.jsonl"
{
  echo "# $(date -u +%FT%TZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "# open files: $fds; idle members: $idle; largest pair count: $big"
  if [ -n "$pin" ]; then echo "# pinned: the bench on CPU 0, servers on CPUs ${bench_pin[1]}"; else echo "# pinned: no"; fi
  echo "# rtcroom: $variants (tree $(git rev-parse --short HEAD 2>/dev/null || echo '?')); peerjs: $peerjs"
} | tee -a "$out/machine.txt" >&2

run() { # run TARGET ARGS...: one load, its JSON line appended to results.jsonl
  local tgt="$1"; shift
  local args=() name="$label"
  case "$tgt" in
    peerjs) args=(--target peerjs --spawn "$peerjs") ;;
    raw) args=(--target raw) ;;
    raw-ack) args=(--target raw-ack) ;;
    *) args=(--target rtcroom --spawn "${bin_of[$tgt]}"); name="${label:+$label }$tgt" ;;
  esac
  echo "== $tgt $*" >&2
  local line=""
  if line="$(timeout 900 "${pinned[@]}" "$bench" "$@" "${args[@]}" "${bench_pin[@]}" --label "$name" --quiet)"; then :; fi
  if [ -n "$line" ]; then
    printf '%s\n' "$line" >> "$results"
    printf '%s\n' "$line" | python3 -c 'import json,sys; j=json.loads(sys.stdin.read()); s=j["server"]; l=j["latency_us"]; print("   ok=%s relayed/s=%s us/msg=%s p50=%s p99=%s joins/s=%s rss/member=%s errors=%s dropped=%s" % (j["ok"], j["relayed_per_s"], s["us_per_relayed"], l["p50"], l["p99"], j["setup"]["joins_per_s"], s["rss_kib_per_member"], j["errors"], j["dropped"]))' >&2
  fi
  sleep 2 # let TIME_WAIT sockets and the previous server's exit settle
}

for rep in $(seq 1 "$repeats"); do
  echo "### repeat $rep/$repeats" >&2
  if [[ ",$sets," == *",goals,"* ]]; then
    for t in $ours peerjs raw raw-ack; do run "$t" relay --pairs 100 --reply offer --warmup 2 --duration 10; done
    for t in $ours peerjs raw raw-ack; do run "$t" rate --pairs 1000 --rate 10 --warmup 3 --duration 10; done
    for t in $ours peerjs; do run "$t" join-storm --joins 10000 --room-size 3 --concurrency 256; done
    for t in $ours peerjs; do run "$t" idle --members "$idle" --room-size 3 --hold 30 --ramp 2000 --setup-timeout 300; done
    for t in $ours peerjs; do run "$t" idle --call --members "$idle" --room-size 3 --hold 30 --ramp 2000 --setup-timeout 300; done
  fi
  if [[ ",$sets," == *",cpu,"* ]]; then
    for t in $ours peerjs raw raw-ack; do run "$t" relay --pairs 100 --reply offer --warmup 2 --duration 10; done
    for t in $ours peerjs raw raw-ack; do run "$t" rate --pairs 1000 --rate 10 --warmup 3 --duration 10; done
  fi
  if [[ ",$sets," == *",memory,"* ]]; then
    for t in $ours; do
      run "$t" idle --members 6000 --room-size 1 --hold 15
      run "$t" idle --members 6000 --room-size 2 --hold 15
      run "$t" idle --call --members 6000 --room-size 2 --hold 15
    done
  fi
  if [[ ",$sets," == *",records,"* ]]; then
    # 2,000 quality rows per second into SQLite while 10,000 offers/s are relayed, and the
    # same load with records off: the JSON line's server.records_us_per_report is the
    # record writer's own threads per row, the difference between the two the whole cost.
    for t in $ours; do
      run "$t" rate --pairs 1000 --rate 10 --report-stats 1 --warmup 3 --duration 15
      label="${label:+$label }records-off" run "$t" rate --pairs 1000 --rate 10 --report-stats 1 --warmup 3 --duration 15 --server-env RTCROOM_DATABASE_URL=off
    done
  fi
  if [[ ",$sets," == *",rates,"* ]]; then
    for t in $ours peerjs raw; do run "$t" rate --pairs 1000 --rate 10 --warmup 3 --duration 10; done
    for t in $ours peerjs; do run "$t" rate --pairs 1 --rate 10 --warmup 2 --duration 10; done
    for t in $ours peerjs; do run "$t" rate --pairs "$big" --rate 1 --warmup 5 --duration 15 --setup-timeout 300; done
  fi
  if [[ ",$sets," == *",growth,"* ]]; then
    for p in 1 1000 "$big"; do
      for t in $ours peerjs; do run "$t" relay --pairs "$p" --reply offer --warmup 3 --duration 10 --setup-timeout 300; done
    done
    for t in $ours peerjs; do run "$t" rate --pairs 1 --rate 10 --warmup 2 --duration 10; done
    for t in $ours peerjs; do run "$t" rate --pairs "$big" --rate 1 --warmup 5 --duration 15 --setup-timeout 300; done
  fi
done
python3 scripts/bench/summarize.py "$results" > "$out/summary.md"
cat "$out/summary.md"
echo "results: $results" >&2
