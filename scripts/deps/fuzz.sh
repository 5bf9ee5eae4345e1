#!/usr/bin/env bash
# Installs what the fuzz targets need to build (scripts/fuzz.sh): a C++ compiler, for
# libFuzzer itself (libfuzzer-sys compiles it from source). Idempotent.
set -euo pipefail

if command -v c++ >/dev/null || command -v g++ >/dev/null || command -v clang++ >/dev/null; then
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends g++
