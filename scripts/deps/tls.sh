#!/usr/bin/env bash
# Installs the openssl command: the TLS tests (crates/server/tests/tls.rs, docs_snippets.rs)
# make their self-signed certificates with it. Idempotent.
set -euo pipefail

if command -v openssl >/dev/null; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends openssl
