#!/usr/bin/env bash
# Installs what the cluster tests need (crates/server/tests/cluster*.rs,
# web/tests/cluster.test.mjs): redis-server, of which the tests start private instances on
# free ports (they stop them to test an outage; the machine's shared Redis is never
# stopped), and HAProxy, the load balancer the browser test puts in front of the nodes.
# Idempotent and quiet when both are there. Neither package's system service is enabled
# or started: the tests run their own instances and stop them by pid.
set -euo pipefail

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v haproxy >/dev/null || missing+=(haproxy)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "cluster deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d keeps the packages' post-install scripts from starting their services.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
