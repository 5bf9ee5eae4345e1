#!/usr/bin/env bash
# A short fuzzing run of every target (fuzz/; scripts/fuzz.sh): 10 s each by default
# (RTCROOM_FUZZ_SECONDS), from the kept corpus, which is also replayed in full first.
# Fails on any crash, with the input that caused it. The build (its own, instrumented,
# optimized; in $CARGO_TARGET_DIR, else fuzz/target) takes most of the time: about 100 crates
# when nothing of it is built yet, 20 s to 3 min after a change to rtcroom's crates.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/fuzz.sh "${RTCROOM_FUZZ_SECONDS:-10}"
