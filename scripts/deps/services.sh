#!/usr/bin/env bash
# The database servers the tests talk to: start whichever is down.
# MariaDB on 127.0.0.1:3306 (root, no password), PostgreSQL on 127.0.0.1:5432 (trust).
set -euo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_up() {
  for _ in $(seq 1 60); do
    up "$1" && return 0
    sleep 0.5
  done
  echo "services.sh: $2 did not come up on 127.0.0.1:$1" >&2
  return 1
}

if ! up 3306; then
  echo "starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_up 3306 MariaDB
fi
if ! up 5432; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
  wait_up 5432 PostgreSQL
fi
