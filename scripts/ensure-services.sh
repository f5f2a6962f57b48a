#!/usr/bin/env bash
# Starts PostgreSQL and Redis on localhost when they are not answering (CI and fresh machines).
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! pg_up; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if ! redis_up; then
  echo "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 1 30); do redis_up && break; sleep 1; done
fi
pg_up || { echo "PostgreSQL is not answering on 127.0.0.1:5432" >&2; exit 1; }
# The suite creates its own test database; the named one must exist for tools that connect to it.
db_name="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/bank_portal}"
db_name="${db_name##*/}"; db_name="${db_name%%\?*}"
if ! psql -h 127.0.0.1 -U postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '${db_name}'" postgres | grep -q 1; then
  createdb -h 127.0.0.1 -U postgres "${db_name}"
fi
redis_up || { echo "Redis is not answering on 127.0.0.1:6379" >&2; exit 1; }
