#!/usr/bin/env bash
# End-to-end tests of the web page and SDK in headless Chromium against the real binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --locked --bin rtcroom
RTCROOM_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/rtcroom" bash web/run-e2e.sh
