#!/usr/bin/env bash
# Where a server's work per relayed offer goes, over rtcroom-bench's measured window only
# (the bench prints "window open" and "window closed"; this script acts on those lines).
#
#   scripts/bench/profile.sh TOOL SERVER OUT [BENCH ARGS...]
#     TOOL:   callgrind  the server under valgrind; counts zeroed at "window open" and dumped
#                        at "window closed" (callgrind_control): OUT/callgrind.out.window.
#                        Instruction counts do not depend on the other jobs of a shared
#                        machine; CPU time does.
#             perf       the server as it is; over the window `perf stat` counts its system
#                        calls and context switches (OUT/perf.stat) and `perf record`
#                        samples its CPU time, user and kernel (OUT/perf.data). Needs
#                        kernel.perf_event_paranoid <= -1 for the tracepoints.
#     SERVER: rtcroom (records off), rtcroom-records (records to SQLite in a temporary data
#             dir, as `rtcroom-bench --spawn` runs it), raw-ack or raw (the bench's relays)
#     OUT:    directory for the profile, the bench's JSON line (bench.json) and the logs
#     BENCH ARGS default to the closed loop: relay --pairs 100 --reply offer --warmup 5 --duration 20
#   RTCROOM_BIN, BENCH_BIN: the binaries (default: this tree's release builds)
#
# Then: callgrind_annotate --inclusive=yes OUT/callgrind.out.window, or
# perf report -i OUT/perf.data --sort dso,sym; divide by the bench's relayed_offers.
set -euo pipefail
cd "$(dirname "$0")/../.."
tool="$1"; server="$2"; out="$3"; shift 3
[ $# -gt 0 ] || set -- relay --pairs 100 --reply offer --warmup 5 --duration 20
target="${CARGO_TARGET_DIR:-target}"
bin="${RTCROOM_BIN:-$target/release/rtcroom}"
bench="${BENCH_BIN:-$target/release/rtcroom-bench}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
data="$(mktemp -d)"
case "$tool" in
  callgrind) wrap=(valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out.%p") ;;
  perf) wrap=() ;;
  *) echo "unknown tool $tool" >&2; exit 2 ;;
esac
case "$server" in
  rtcroom|rtcroom-records)
    env=(RTCROOM_SERVER_LISTEN=127.0.0.1:0 RTCROOM_SERVER_DATA_DIR="$data"
         RTCROOM_AUTH_REQUIRED=false RTCROOM_LOG_LEVEL=warn
         RTCROOM_ROOM_RATE_PER_SEC=1000000 RTCROOM_ROOM_RATE_BURST=1000000
         RTCROOM_SERVER_MAX_CONNECTIONS=1000000 RTCROOM_SERVER_MAX_CONNECTIONS_PER_IP=0
         RTCROOM_ROOM_JOINS_PER_IP_PER_SEC=0 RTCROOM_ICE_MODE=static RTCROOM_TURN_ENABLED=false
         RTCROOM_ROOM_MAX_CAPACITY=3)
    [ "$server" = rtcroom ] && env+=(RTCROOM_DATABASE_URL=off)
    env "${env[@]}" "${wrap[@]}" "$bin" serve >"$out/server.out" 2>"$out/server.err" &
    path=/ws; tgt=rtcroom ;;
  raw|raw-ack)
    ack=(); [ "$server" = raw-ack ] && ack=(--ack)
    "${wrap[@]}" "$bench" raw-relay --listen 127.0.0.1:0 "${ack[@]}" >"$out/server.out" 2>"$out/server.err" &
    path=/peerjs; tgt=peerjs ;;
  *) echo "unknown server $server" >&2; exit 2 ;;
esac
pid=$!
perf_pids=""
cleanup() {
  kill "$pid" 2>/dev/null || true
  for p in $perf_pids; do kill -INT "$p" 2>/dev/null || true; done
  rm -rf "$data"
}
trap cleanup EXIT
addr=""
for _ in $(seq 600); do
  addr="$(sed -n 's|^listening on http://||p' "$out/server.out" 2>/dev/null | head -1 || true)"
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { echo "the server did not listen" >&2; exit 1; }
events=raw_syscalls:sys_enter,sched:sched_switch,syscalls:sys_enter_futex,syscalls:sys_enter_epoll_wait
events="$events,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_read"
events="$events,syscalls:sys_enter_write,syscalls:sys_enter_writev,task-clock"
on_open() {
  case "$tool" in
    callgrind) callgrind_control -z "$pid" >/dev/null ;;
    perf)
      perf stat -e "$events" -p "$pid" -o "$out/perf.stat" >/dev/null 2>&1 &
      perf_pids="$!"
      perf record -e cpu-clock -F 997 -g -p "$pid" -o "$out/perf.data" >/dev/null 2>&1 &
      perf_pids="$perf_pids $!" ;;
  esac
}
on_close() {
  case "$tool" in
    callgrind) callgrind_control -d window "$pid" >/dev/null ;;
    perf) for p in $perf_pids; do kill -INT "$p"; done ;;
  esac
}
# The hooks run in this shell (not in a pipeline's subshell), reading the bench's stderr
# through a FIFO.
fifo="$out/bench.fifo"; rm -f "$fifo"; mkfifo "$fifo"
"$bench" "$@" --target "$tgt" --url "ws://$addr$path" --server-pid "$pid" 2>"$fifo" >"$out/bench.json" &
bench_pid=$!
while IFS= read -r line; do
  printf '%s\n' "$line" >&2
  case "$line" in
    *"window open"*) on_open ;;
    *"window closed"*) on_close ;;
  esac
done <"$fifo"
wait "$bench_pid" || true
for p in $perf_pids; do wait "$p" 2>/dev/null || true; done
perf_pids=""
rm -f "$fifo"
kill -TERM "$pid"; wait "$pid" || true
if [ "$tool" = callgrind ]; then
  for f in "$out"/callgrind.out."$pid"*; do
    if head -30 "$f" | grep -q '^desc: Trigger:.*window'; then mv "$f" "$out/callgrind.out.window"; fi
  done
fi
python3 -c '
import json,sys
j=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
keep=("relayed","relayed_offers","resp_offers","relayed_per_s","window_secs","errors","others_cpu_pct")
print(json.dumps({k:j[k] for k in keep if k in j} | {"us_per_relayed": j["server"]["us_per_relayed"]}))' "$out/bench.json"
