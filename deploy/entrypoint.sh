#!/bin/sh
# Entrypoint of the app image (web, worker, beat, migrate).
#
# Secrets arrive as files (Docker secrets under /run/secrets, or any mounted file): for each
# NAME below, NAME_FILE is read into NAME unless NAME is already set. The database and Redis
# URLs are assembled from their password files, so no password sits in docker-compose.yml,
# in `docker inspect` or in the image. Then the command runs (gunicorn by default).
set -eu

for name in DJANGO_SECRET_KEY FIELD_ENCRYPTION_KEY METRICS_TOKEN TWILIO_AUTH_TOKEN EMAIL_URL JWT_SIGNING_KEY JWT_PREVIOUS_SIGNING_KEYS; do
    eval "file=\${${name}_FILE:-}"
    eval "value=\${${name}:-}"
    if [ -z "$value" ] && [ -n "$file" ]; then
        if [ ! -r "$file" ]; then
            echo "entrypoint: ${name}_FILE=$file cannot be read" >&2
            exit 64
        fi
        export "$name=$(cat "$file")"
    fi
done

# postgres://USER:PASSWORD@HOST:PORT/NAME and redis://:PASSWORD@HOST:PORT/DB, the passwords
# percent-encoded (they may hold any character).
quote() { python -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.stdin.read().strip(), safe=""))'; }
if [ -z "${DATABASE_URL:-}" ] && [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    pw=$(quote < "$POSTGRES_PASSWORD_FILE")
    export DATABASE_URL="postgres://${POSTGRES_USER:-portal}:${pw}@${POSTGRES_HOST:-db}:${POSTGRES_PORT:-5432}/${POSTGRES_DB:-bank_portal}"
fi
if [ -z "${REDIS_URL:-}" ] && [ -n "${REDIS_PASSWORD_FILE:-}" ]; then
    pw=$(quote < "$REDIS_PASSWORD_FILE")
    export REDIS_URL="redis://:${pw}@${REDIS_HOST:-cache}:${REDIS_PORT:-6379}/${REDIS_DB:-0}"
fi

# prometheus_client's multiprocess mode: one directory per container, emptied at start so that
# counters of a previous run's worker pids are not added to this one's.
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    find "$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -name '*.db' -delete
fi

exec "$@"
