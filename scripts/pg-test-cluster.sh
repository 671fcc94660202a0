#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the tests.
#
#   scripts/pg-test-cluster.sh start DIR   creates DIR (absent or empty), initdb + pg_ctl start in
#                                          it, prints a libpq connection string on stdout
#   scripts/pg-test-cluster.sh stop DIR    stops the cluster and removes DIR
#   scripts/pg-test-cluster.sh uri DIR     prints the same connection as a postgresql:// URI,
#                                          the form the three commands take for --db
#
# The server listens on 127.0.0.1 at a free port (SCRAM passwords) and on a Unix socket in DIR
# (trust, for the superuser `postgres`: `psql -h DIR -p PORT -U postgres`). The printed string
# connects as the role `keysat`, owner of the database `keysat`, whose random password is only
# in DIR/pgpass (given as `passfile`): no password on a command line. Tuned for tests, not
# for data: fsync off, unless PG_TEST_DURABLE=1 (the benchmark: commits synced as in production). PostgreSQL will not run as root, so as root the server runs as the user
# `postgres` (Debian's packages create it), or `nobody` when there is none.
# Exits 69 when the server's binaries are missing (scripts/setup.sh test installs them).
set -euo pipefail

usage() { echo "pg-test-cluster: usage: $0 start|stop|uri DIR" >&2; exit 64; }
[ $# -eq 2 ] || usage
action=$1
dir=$2
marker=.keysat-pg-test-cluster
bin=${PG_BIN:-}
durable=off
[ "${PG_TEST_DURABLE:-0}" = 1 ] && durable=on
# The caller's PG* variables must not steer psql and pg_ctl to another server.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^PG' || true)

if [ -z "$bin" ]; then
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ] || [ ! -x "$bin/pg_ctl" ]; then
    echo "pg-test-cluster: error: no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (run scripts/setup.sh test, or set PG_BIN)" >&2
    exit 69
fi

runner=()
owner=$(id -un)
if [ "$(id -u)" = 0 ]; then
    owner=postgres
    id -u "$owner" >/dev/null 2>&1 || owner=nobody
    runner=(runuser -u "$owner" --)
fi
as_owner() { "${runner[@]}" "$@"; }

start() {
    if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
        echo "pg-test-cluster: error: $dir is not empty" >&2
        exit 73
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    touch "$dir/$marker"
    chown "$owner" "$dir"
    chmod 0700 "$dir"
    if ! as_owner test -w "$dir"; then
        echo "pg-test-cluster: error: user $owner cannot write to $dir (choose a folder under /tmp)" >&2
        exit 77
    fi
    as_owner "$bin/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C --no-sync \
        --auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 || fail "initdb" "$dir/initdb.log"
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = $durable
synchronous_commit = $durable
full_page_writes = $durable
max_connections = 60
shared_buffers = 32MB
log_min_messages = warning
CONF
    local port tries=0
    until port=$(free_port) && as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port" start >/dev/null 2>&1; do
        tries=$((tries + 1))
        # Another process may have taken the port between choosing and binding it.
        [ "$tries" -lt 5 ] || fail "pg_ctl start" "$dir/server.log"
    done
    echo "$port" >"$dir/port"
    create_role "$port"
    echo "host=127.0.0.1 port=$port dbname=keysat user=keysat passfile=$dir/pgpass sslmode=disable"
}

# A port nothing listens on now, chosen by the kernel (without python3, a random one: the
# caller retries when it is taken).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' \
        2>/dev/null || echo $((20000 + RANDOM % 40000))
}

# The role and database the tests use, with a random password kept in a 0600 passfile (libpq
# ignores a passfile others can read) and sent to psql on its standard input.
create_role() {
    local port=$1 password
    password=$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')
    (umask 077 && echo "127.0.0.1:$port:*:keysat:$password" >"$dir/pgpass")
    as_owner "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d postgres \
        >"$dir/psql.log" 2>&1 <<SQL || fail "creating the role keysat" "$dir/psql.log"
CREATE ROLE keysat LOGIN PASSWORD '$password';
CREATE DATABASE keysat OWNER keysat;
SQL
}

fail() {
    echo "pg-test-cluster: error: $1 failed; its log ($2) ends:" >&2
    tail -n 20 "$2" >&2 || true
    exit 70
}

stop() {
    [ -d "$dir" ] || exit 0
    if [ ! -e "$dir/$marker" ]; then
        echo "pg-test-cluster: error: $dir was not made by '$0 start'; not touching it" >&2
        exit 64
    fi
    if [ -d "$dir/data" ]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

case "$action" in
    start) start ;;
    stop) stop ;;
    uri) echo "postgresql://keysat@127.0.0.1:$(cat "$dir/port")/keysat?passfile=$dir/pgpass&sslmode=disable" ;;
    *) usage ;;
esac
