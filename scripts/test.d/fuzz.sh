#!/usr/bin/env bash
# A short fuzzing run of every target (fuzz/; scripts/fuzz.sh): 10 s each by default
# (RTCROOM_FUZZ_SECONDS), from the kept corpus, which is also replayed in full first.
# Fails on any crash, with the input that caused it. The build (its own, instrumented,
# optimized) takes most of the time: a few minutes when nothing of it is built yet.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/fuzz.sh "${RTCROOM_FUZZ_SECONDS:-10}"
