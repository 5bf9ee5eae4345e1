# Shared by the bench scripts (sourced, not run): scripts/bench/compare.sh, cluster.sh.

# pin_cpus PIN: the -p option. With PIN non-empty, `pinned` holds the prefix that runs the
# load generator on CPU 0 (taskset) and `bench_pin` the bench's options that put every
# server it spawns on the other CPUs; with PIN empty both are empty. Exits 2 on a machine
# with fewer than 2 CPUs.
pin_cpus() {
  pinned=()
  bench_pin=()
  if [ -n "$1" ]; then
    local cpus
    cpus="$(nproc)"
    [ "$cpus" -ge 2 ] || { echo "-p needs at least 2 CPUs (this machine has $cpus)" >&2; exit 2; }
    pinned=(taskset -c 0)
    bench_pin=(--server-cpus "1-$((cpus - 1))")
  fi
}

# usage: prints the calling script's header comment (every `#` line after the first, up to
# the first line of code) without the `# `, then exits 2.
usage() {
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0" >&2
  exit 2
}
