#!/usr/bin/env bash
# What `make check-dist` runs where the package is installed, as a host without a toolchain meets
# it: on this machine with the Swift toolchain hidden in a mount namespace (scripts/check-dist.sh),
# and chrooted in a Debian 13 root (scripts/check-dist-trixie.sh). Usage: WORK VERSION [PG_URI]:
# WORK a folder for its files, VERSION what --version must say, PG_URI a PostgreSQL queue for the
# two-host part (skipped without it).
set -euo pipefail
work=$1 version=$2
fail() { echo "check-dist: $*" >&2; exit 1; }
command -v swift > /dev/null && swift --version > /dev/null 2>&1 && fail "the toolchain is still reachable"
for p in keysat-enqueue keysat-deliver keysat-webhooks; do
    [ "$(/usr/bin/$p --version)" = "$version" ] || fail "$p --version is not $version"
    ! grep -q 'not found' <<<"$(ldd /usr/bin/$p)" || fail "$p misses a library: $(ldd /usr/bin/$p | grep 'not found')"
done
man -w keysat-deliver > /dev/null 2>&1 || [ -e /usr/share/man/man1/keysat-deliver.1.gz ] || fail "no man page"

# The operator's set-up, as the README says it.
sed -i 's/^KEYSAT_ALLOW_NETWORKS=.*/KEYSAT_ALLOW_NETWORKS=127.0.0.1/' /etc/default/keysat-webhooks
as_keysat() { setpriv --reuid keysat --regid keysat --init-groups "$@"; }
set -a; . /etc/default/keysat-webhooks; set +a
as_keysat keysat-webhooks init --group keysat > /dev/null
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/secret"
chmod 0644 "$work/secret"; chmod 0755 "$work"
/usr/bin/keysat-webhooks listen --port 0 --count 4 --secret-file "$work/secret" > "$work/received" 2> "$work/listen.err" &
echo $! > "$work/receiver.pid"
for _ in $(seq 100); do grep -q 'listening on' "$work/listen.err" && break; sleep 0.05; done
url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/listen.err")
as_keysat keysat-webhooks endpoint add "${url}hooks" --secret-file "$work/secret" > /dev/null 2>&1

# The licensing service: a user of its own, in the keysat group.
gid=$(getent group keysat | cut -d: -f3)
enqueue() { setpriv --reuid 64201 --regid 64201 --groups "$gid" keysat-enqueue --kick "$@" license.issued '{"n":1}'; }

# A unit's ExecStart as systemd runs it: its User=/Group=, a clean environment with its
# Environment= then EnvironmentFile= assignments, its UMask=, the folders it names made first.
unit=/lib/systemd/system/keysat-deliver.service
value() { sed -n "s/^$1=//p" "$unit"; }
run_service() {
    local env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/var/lib/keysat
        USER="$(value User)" LOGNAME="$(value User)" SHELL=/usr/sbin/nologin)
    while IFS= read -r line; do env+=("$line"); done < <(value Environment)
    local file; file=$(value EnvironmentFile); file=${file#-}
    if [ -f "$file" ]; then
        while IFS= read -r line; do
            case $line in ''|'#'*) continue ;; esac
            env+=("$line")
        done < "$file"
    fi
    install -d -o "$(value User)" -g "$(value Group)" -m "$(value StateDirectoryMode)" "/var/lib/$(value StateDirectory)"
    install -d -o "$(value User)" -g "$(value Group)" -m "$(value CacheDirectoryMode)" "/var/cache/$(value CacheDirectory)"
    env -i "${env[@]}" setpriv --reuid "$(value User)" --regid "$(value Group)" --init-groups \
        /bin/sh -c "umask $(value UMask); exec $(value ExecStart)"
}
# The cron file's line, as cron runs it: its user, SHELL and PATH, a login's HOME and LOGNAME.
run_cron() {
    local cron=/usr/share/doc/keysat-webhooks/examples/keysat-deliver.cron
    local line; line=$(grep -E '^\* \* \* \* \* ' "$cron")
    local user; user=$(echo "$line" | awk '{print $6}')
    local command; command=$(echo "$line" | cut -d' ' -f7-)
    env -i SHELL="$(sed -n 's/^SHELL=//p' "$cron")" PATH="$(sed -n 's/^PATH=//p' "$cron")" HOME=/var/lib/keysat \
        LOGNAME="$user" setpriv --reuid "$user" --regid "$user" --init-groups /bin/sh -c "$command"
}
check_metrics() {
    local metrics; metrics=$(sed -n 's/^KEYSAT_METRICS_FILE=//p' /etc/default/keysat-webhooks)
    [ "$(stat -c '%a %U' "$metrics")" = "644 keysat" ] || fail "$1: metrics file is $(stat -c '%a %U' "$metrics")"
    grep -q '^keysat_webhooks_last_run_success 1$' <<<"$(setpriv --reuid 65534 --regid 65534 --clear-groups cat "$metrics")" \
        || fail "$1: the metrics file is not readable by another user, or the run failed"
}
expect_quiet() {  # name, then the command; it must exit 0 and print nothing
    local name=$1; shift
    local out; out=$("$@" 2>&1) || fail "$name exited $?: $out"
    [ -z "$out" ] || fail "$name printed: $out"
    check_metrics "$name"
}
received() { cat "$work/received" | grep -c "license.issued" || true; }

enqueue > /dev/null
expect_quiet "the service (started by the timer)" run_service
[ "$(received)" = 1 ] || fail "the service delivered $(received) of 1"

# The path unit: enqueue --kick must write the very file its PathChanged= names.
kick=$(sed -n 's/^PathChanged=//p' /lib/systemd/system/keysat-deliver.path)
before=$(stat -c %s "$kick" 2>/dev/null || echo 0)
enqueue > /dev/null
[ "$(stat -c %s "$kick")" -gt "$before" ] || fail "enqueue --kick did not write $kick, which the path unit watches"
expect_quiet "the service (started by the path unit)" run_service
[ "$(received)" = 2 ] || fail "the path-started service delivered $(( $(received) - 1 )) of 1"

enqueue > /dev/null
expect_quiet "the cron line" run_cron
[ "$(received)" = 3 ] || fail "the cron line delivered $(( $(received) - 2 )) of 1"

# A user outside the group is refused, with one line.
out=$(setpriv --reuid 64202 --regid 64202 --clear-groups keysat-enqueue license.issued '{}' 2>&1) && fail "an outsider could enqueue"
status=$(setpriv --reuid 64202 --regid 64202 --clear-groups keysat-enqueue license.issued '{}' > /dev/null 2>&1; echo $?)
[ "$status" = 77 ] || fail "an outsider's enqueue exited $status, not 77: $out"
echo "check-dist: installed binaries, the service (timer and path) and the cron line ran with no toolchain reachable"

# Two hosts, one PostgreSQL queue (issue 21): the installed programs load libpq5 (Recommends)
# on first use; two runs at once, as two hosts' timers, share the work and send each once.
pg_uri=${3:-}
[ -n "$pg_uri" ] || exit 0
passfile=${pg_uri#*passfile=}; passfile=${passfile%%&*}
for who in keysat:keysat 64201:64201; do
    install -o "${who%%:*}" -g "${who##*:}" -m 0600 "$passfile" "$work/pgpass-${who%%:*}"
done
db_for() { echo "${pg_uri%%\?*}?passfile=$work/pgpass-$1&sslmode=disable"; }
KEYSAT_DB=$(db_for keysat) as_keysat keysat-webhooks init > /dev/null || fail "init on PostgreSQL failed"
/usr/bin/keysat-webhooks listen --port 0 --count 3 --secret-file "$work/secret" > "$work/received-pg" 2> "$work/listen-pg.err" &
for _ in $(seq 100); do grep -q 'listening on' "$work/listen-pg.err" && break; sleep 0.05; done
pg_url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/listen-pg.err")
KEYSAT_DB=$(db_for keysat) as_keysat keysat-webhooks endpoint add "${pg_url}hooks" --secret-file "$work/secret" > /dev/null 2>&1 \
    || fail "endpoint add on PostgreSQL failed"
for n in 1 2 3; do
    KEYSAT_DB=$(db_for 64201) setpriv --reuid 64201 --regid 64201 --clear-groups keysat-enqueue license.issued "{\"n\":$n}" \
        > /dev/null || fail "enqueue on PostgreSQL failed"
done
runs=()
for host in a b; do
    env KEYSAT_DB="$(db_for keysat)" KEYSAT_ALLOW_NETWORKS=127.0.0.1 setpriv --reuid keysat --regid keysat --init-groups \
        keysat-deliver > "$work/deliver-$host.out" 2>&1 &
    runs+=($!)
done
for run in "${runs[@]}"; do wait "$run" || fail "a run on PostgreSQL exited $?: $(cat "$work"/deliver-*.out)"; done
for host in a b; do [ ! -s "$work/deliver-$host.out" ] || fail "a run on PostgreSQL printed: $(cat "$work/deliver-$host.out")"; done
count=$(grep -c "license.issued" "$work/received-pg" || true)
[ "$count" = 3 ] || fail "two runs on one PostgreSQL queue delivered $count of 3"
echo "check-dist: two runs on one PostgreSQL queue delivered every event once, with libpq loaded by the installed programs"
