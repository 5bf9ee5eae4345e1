#!/usr/bin/env bash
# Install PeerJS server 1.0.2 (the `peer` npm package) for side-by-side benchmarks, and
# print the directory to pass to `rtcroom-bench --target peerjs --spawn DIR`.
#   scripts/bench/peerjs.sh [DIR]      (default: ${CARGO_TARGET_DIR:-target}/peerjs)
# To run it by hand instead: node DIR/node_modules/peer/dist/bin/peerjs.js --port PORT
#   --host 127.0.0.1 --key peerjs -c 100000
set -euo pipefail
cd "$(dirname "$0")/../.."
dir="${1:-${CARGO_TARGET_DIR:-target}/peerjs}"
mkdir -p "$dir"
if [ ! -f "$dir/node_modules/peer/dist/bin/peerjs.js" ]; then
  command -v npm >/dev/null || { echo "peerjs.sh: npm is needed (apt-get install -y npm)" >&2; exit 1; }
  (cd "$dir" && npm install --no-audit --no-fund --no-save --silent peer@1.0.2 >&2)
fi
cd "$dir" && pwd
