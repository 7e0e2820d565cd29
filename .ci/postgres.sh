#!/usr/bin/env bash
# Start a throwaway PostgreSQL server (Debian's postgresql package) on 127.0.0.1 for the history
# store's tests, and print its URL. Usage: export STREAM_MONITOR_TEST_POSTGRES="$(.ci/postgres.sh)"
# Installs the package when it is missing and apt-get can (root). Idempotent: a server already
# running in the data directory is reused.
set -euo pipefail
PORT="${STREAM_MONITOR_PG_PORT:-15432}"
DATA="${STREAM_MONITOR_PG_DATA:-/tmp/stream-monitor-pg}"
PASSWORD=stream-monitor-test

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
if [ -z "$(bindir)" ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
fi
BIN="$(bindir)"
[ -n "$BIN" ] || { echo "error: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }

# initdb and the server refuse to run as root: run them as the package's postgres user.
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if [ ! -f "$DATA/PG_VERSION" ]; then
    mkdir -p "$DATA"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$DATA"
    pwfile="$(mktemp)"
    echo "$PASSWORD" >"$pwfile"
    chmod 644 "$pwfile"
    as_owner "$BIN/initdb" -D "$DATA" -U stream_monitor --pwfile="$pwfile" \
        --auth=scram-sha-256 -E UTF8 >&2
    rm -f "$pwfile"
fi
if ! as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    as_owner "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 \
        -o "-p $PORT -c listen_addresses=127.0.0.1 -k $DATA -c fsync=off" start >&2
fi
export PGPASSWORD="$PASSWORD"
if ! "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U stream_monitor -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'stream_monitor'" | grep -q 1; then
    "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U stream_monitor stream_monitor >&2
fi
echo "postgresql://stream_monitor:$PASSWORD@127.0.0.1:$PORT/stream_monitor"
