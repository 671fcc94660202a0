#!/usr/bin/env bash
# A resolver that never answers, run by ResolverStallTests inside `unshare --mount --net` (as
# root): every name is looked up at 127.0.0.53, where a socket reads queries and answers none
# (the C library would wait 2 x 5 s). Times two runs: one with --timeout 2 --max-runtime 3, one
# sent SIGTERM half a second in. Writes their exit status and milliseconds to DIR/timings.
#
# usage: dns_stall_scenario.sh DIR BIN_DIR
set -euo pipefail
dir=$1 bin=$2
ip link set lo up
printf 'nameserver 127.0.0.53\noptions timeout:5 attempts:2\n' > "$dir/resolv.conf"
mount --bind "$dir/resolv.conf" /etc/resolv.conf
printf 'hosts: files dns\n' > "$dir/nsswitch.conf"
mount --bind "$dir/nsswitch.conf" /etc/nsswitch.conf
python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.53", 53))
while True:
    s.recvfrom(4096)
' &
dns=$!
trap 'kill $dns 2> /dev/null || true' EXIT
export KEYSAT_DB="$dir/keysat.db"
"$bin/keysat-webhooks" init > /dev/null
now() { date +%s%N; }
start=$(now)
"$bin/keysat-webhooks" endpoint add "http://stall.keysat.test:8080/hook" > /dev/null 2>&1
echo "add 0 $(( ($(now) - start) / 1000000 ))" >> "$dir/timings"
"$bin/keysat-enqueue" license.issued '{"n":1}' > /dev/null
start=$(now)
status=0
"$bin/keysat-deliver" --timeout 2 --dry-run > /dev/null 2>&1 || status=$?
echo "dry-run $status $(( ($(now) - start) / 1000000 ))" >> "$dir/timings"
start=$(now)
status=0
"$bin/keysat-deliver" --timeout 2 --max-runtime 3 > /dev/null 2> "$dir/budget.err" || status=$?
echo "budget $status $(( ($(now) - start) / 1000000 ))" >> "$dir/timings"
sqlite3 "$KEYSAT_DB" "UPDATE webhook_deliveries SET next_attempt_at = '2000-01-01T00:00:00.000000+00:00' WHERE next_attempt_at IS NOT NULL"
start=$(now)
"$bin/keysat-deliver" --timeout 2 > /dev/null 2> "$dir/signal.err" &
run=$!
sleep 0.5
kill -TERM $run
status=0
wait $run || status=$?
echo "signal $status $(( ($(now) - start) / 1000000 ))" >> "$dir/timings"
sqlite3 -json "$KEYSAT_DB" "SELECT attempt_count, last_error FROM webhook_deliveries" > "$dir/rows.json"
