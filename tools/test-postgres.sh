#!/usr/bin/env bash
# Starts a throwaway PostgreSQL on 127.0.0.1 for the store tests and prints
# the URL to export as CRAMP_CDS_TEST_POSTGRES_URL. Needs Debian's
# `postgresql` package. Usage: tools/test-postgres.sh start|stop [DIR]
# fsync is off (throwaway data) unless CRAMP_CDS_TEST_POSTGRES_FSYNC=on.
set -euo pipefail
action=${1:-start}
dir=${2:-/tmp/cramp-cds-postgres}
# A free loopback port unless one is asked for (stop finds the server by DIR).
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bin" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }

# initdb and postgres refuse to run as root: use the postgres account then.
as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$action" in
start)
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        mkdir -p "$dir"
        [ "$(id -u)" = 0 ] && chown postgres "$dir"
        as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync >/dev/null
    fi
    port=${CRAMP_CDS_TEST_POSTGRES_PORT:-$(free_port)}
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=${CRAMP_CDS_TEST_POSTGRES_FSYNC:-off}" start >/dev/null
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
stop)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null
    ;;
*)
    echo "usage: $0 start|stop [DIR]" >&2
    exit 2
    ;;
esac
