#!/usr/bin/env bash
# Build the fuzz targets (fuzz/) and run each for a bounded time; fails on the first crash.
#
#   scripts/fuzz.sh [seconds-per-target] [target...]     (default: 30 s, every target)
#
# libFuzzer (libfuzzer-sys) on the stable toolchain: the code is instrumented with LLVM's
# SanitizerCoverage through rustc's stable -C flags (what cargo-fuzz passes, without its
# nightly-only -Zsanitizer); no AddressSanitizer (safe Rust only; a bug is a panic, an overflow
# or a failed check). --target keeps the flags off build scripts and proc macros.
#
# Each target starts from its kept corpus (fuzz/corpus/<target>/, read only) and writes what
# it finds to $work/<target>/; a crash is written to $work/artifacts/ and the script stops
# with the command that reproduces it. docs/fuzzing.md says how to run longer campaigns and
# what to do with a crash.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
shift || true
all=(decode ws_reader turn_input engine)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

triple="$(rustc -vV | sed -n 's/^host: //p')"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/fuzz/target}"
work="${FUZZ_WORK:-$CARGO_TARGET_DIR/fuzz-work}"
bin="$CARGO_TARGET_DIR/$triple/release"

export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares"

started=$(date +%s)
bins=()
for t in "${targets[@]}"; do bins+=(--bin "$t"); done
cargo build --release --locked --manifest-path fuzz/Cargo.toml --target "$triple" "${bins[@]}"
echo "fuzz: built in $(($(date +%s) - started)) s"

mkdir -p "$work/artifacts"
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  echo "fuzz: $t for $seconds s"
  log="$work/$t.log"
  # -timeout: one input taking 10 s is a hang, reported like a crash.
  if ! "$bin/$t" "$work/$t" "fuzz/corpus/$t" \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$work/artifacts/$t-" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz: $t failed; the input is in $work/artifacts/ (reproduce: $bin/$t <file>)" >&2
    exit 1
  fi
  # The last status line (coverage, features, corpus) and the speed.
  grep -E '^#[0-9]+' "$log" | tail -n 1
  grep -E 'stat::(number_of_executed_units|average_exec_per_sec)' "$log"
done
echo "fuzz: ok (${targets[*]}; $seconds s each; $(($(date +%s) - started)) s in all)"
