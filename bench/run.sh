#!/usr/bin/env bash
# `make bench`: the production-like stack on 127.0.0.1, the wrk scenarios, the report.
# The stack is torn down on every exit (the runner stops it itself; this trap is the safety
# net when the runner is killed): each process the runner started leads its own process group,
# recorded in bench/.work/pids, and only those groups are signalled.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${BENCH_WORK:-bench/.work}  # one per concurrent run (bench/runner.py reads the same variable)
mkdir -p "$WORK" bench/results

teardown() {
    local pids
    # the portal's stack, and the plain reference app's (bench/plain_app.py, in $WORK/plain)
    pids=$(cat "$WORK/pids" "$WORK/plain/pids" 2>/dev/null || true)
    [ -n "$pids" ] || return 0
    for pid in $pids; do kill -TERM -- "-$pid" 2>/dev/null || true; done
    for _ in $(seq 1 30); do
        alive=0
        for pid in $pids; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.5
    done
    for pid in $pids; do kill -KILL -- "-$pid" 2>/dev/null || true; done
    rm -f "$WORK/pids" "$WORK/plain/pids"
}
trap teardown EXIT
trap 'exit 130' INT TERM

if ! command -v wrk >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "[bench] installing wrk (Debian package)" >&2
        apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
    else
        echo "[bench] wrk is missing: sudo apt-get install -y wrk" >&2
        exit 2
    fi
fi
bash scripts/ensure-services.sh
.venv/bin/python bench/runner.py "$@"
