#!/usr/bin/env bash
# Installs what the ICE/TURN tests and the TURN benchmark need: coturn's turnserver,
# turnutils_uclient and turnutils_peer. Idempotent. coturn's system service is never enabled:
# the tests start their own instances on 127.0.0.1 and stop them by pid.
set -euo pipefail

if command -v turnserver >/dev/null && command -v turnutils_uclient >/dev/null \
    && command -v turnutils_peer >/dev/null; then
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d keeps the package's post-install script from starting the service.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends coturn
