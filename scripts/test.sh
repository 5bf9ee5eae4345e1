#!/usr/bin/env bash
# Run every test of rtcroom, the way CI does: formatting, lints, unit, integration and
# end-to-end tests. Installs and starts what the tests need first (scripts/deps/*.sh).
# Exits non-zero as soon as anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "test dependencies"
for dep in scripts/deps/*.sh; do
  [ -e "$dep" ] || continue
  bash "$dep"
done

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

for extra in scripts/test.d/*.sh; do
  [ -e "$extra" ] || continue
  step "$extra"
  bash "$extra"
done
