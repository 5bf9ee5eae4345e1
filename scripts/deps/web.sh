#!/usr/bin/env bash
# Dependencies of the web client's end-to-end tests (web/run-e2e.sh): Debian's chromium,
# driven by playwright-core from npm (web/package-lock.json). Idempotent and quiet when
# everything is there already. `npx playwright install` cannot work on these machines, and
# is never needed: the tests launch /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "$0")/../.."

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "${APT_UPDATED:-}" ]; then
    apt-get update -qq
    APT_UPDATED=1
  fi
  apt-get install -y -qq "$@" >/dev/null
}

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "web deps: installing nodejs and npm"
  apt_install nodejs npm
fi

if [ ! -x /usr/bin/chromium ]; then
  echo "web deps: installing chromium"
  apt_install chromium
fi

# npm ci only when node_modules is missing or older than the lock file.
if [ ! -f web/node_modules/.package-lock.json ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
  echo "web deps: npm ci in web/"
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
fi
