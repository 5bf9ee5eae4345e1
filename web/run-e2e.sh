#!/usr/bin/env bash
# End-to-end tests of the web client: headless Chromium pages call each other through the
# real rtcroom binary (each test file starts its own on 127.0.0.1 port 0).
# Builds nothing: set RTCROOM_BIN, or build target/debug/rtcroom first (cargo build --bin rtcroom).
# Extra arguments go to `node --test` (e.g. --test-name-pattern=full).
# Screenshots of every state of the page are kept in web/test-results/screenshots/;
# RTCROOM_SCREENSHOTS=docs/screenshots retakes the screenshots of docs/web.md instead.
# RTCROOM_E2E_WEB_FROM_DISK=1 serves web/ from disk instead of the binary's embedded copy
# (page edits without a rebuild; the binary still answers /api and /ws).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"

bash "$repo/scripts/deps/web.sh"

bin="${RTCROOM_BIN:-$repo/target/debug/rtcroom}"
if [ ! -x "$bin" ]; then
  echo "run-e2e.sh: no rtcroom binary at $bin; build it (cargo build --bin rtcroom) or set RTCROOM_BIN" >&2
  exit 2
fi
export RTCROOM_BIN="$bin"

cd "$repo"
# One file at a time: each starts Chromium, and the machines have two cores.
concurrency=()
if node --help 2>/dev/null | grep -q -- '--test-concurrency'; then
  concurrency=(--test-concurrency=1)
fi
exec node --test "${concurrency[@]}" "$@" web/tests/
