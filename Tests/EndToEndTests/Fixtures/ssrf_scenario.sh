#!/usr/bin/env bash
# The network-policy scenario, run by HardeningTests inside `unshare --mount --net` (as root):
# a private network namespace where 169.254.169.254 (the cloud metadata address) is local,
# names resolve through a hosts file and a rebinding DNS server, and a receiver listens on
# every address. Leaves its database and the receiver's log in DIR for the test to read.
#
# usage: ssrf_scenario.sh DIR BIN_DIR FIXTURES_DIR
set -euo pipefail
dir=$1 bin=$2 fixtures=$3
ip link set lo up
ip addr add 169.254.169.254/32 dev lo
printf '127.0.0.1 localhost\n127.0.0.1 loop.keysat.test\n169.254.169.254 metadata.keysat.test\n' > "$dir/hosts"
mount --bind "$dir/hosts" /etc/hosts
printf 'nameserver 127.0.0.53\noptions attempts:1 timeout:1\n' > "$dir/resolv.conf"
mount --bind "$dir/resolv.conf" /etc/resolv.conf
printf 'hosts: files dns\n' > "$dir/nsswitch.conf"
mount --bind "$dir/nsswitch.conf" /etc/nsswitch.conf
python3 "$fixtures/rebinding_dns.py" 127.0.0.53 &
dns=$!
mkdir -p "$dir/receiver"
python3 "$fixtures/receiver.py" "$dir/receiver" 0.0.0.0 &
receiver=$!
trap 'kill $dns $receiver 2>/dev/null || true' EXIT
for _ in $(seq 200); do [ -e "$dir/receiver/port" ] && break; sleep 0.05; done
port=$(cat "$dir/receiver/port")
export KEYSAT_DB="$dir/keysat.db"
unset KEYSAT_ALLOW_NETWORKS
"$bin/keysat-webhooks" init > /dev/null
"$bin/keysat-webhooks" endpoint add "http://loop.keysat.test:$port/status/204/loop" --description loop > /dev/null 2> "$dir/add-loop.err"
"$bin/keysat-webhooks" endpoint add "http://metadata.keysat.test:$port/status/204/metadata" --description metadata > /dev/null 2> "$dir/add-metadata.err"
"$bin/keysat-webhooks" endpoint add "http://rebind.keysat.test:$port/status/204/rebind" --description rebind > /dev/null 2> "$dir/add-rebind.err"
"$bin/keysat-enqueue" license.issued '{"n":1}' > /dev/null
due() { sqlite3 "$KEYSAT_DB" "UPDATE webhook_deliveries SET next_attempt_at = '2000-01-01T00:00:00.000000+00:00' WHERE next_attempt_at IS NOT NULL"; }
snapshot() {
    sqlite3 -json "$KEYSAT_DB" "SELECT e.description, d.attempt_count, d.delivered_at, d.last_error
        FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id ORDER BY e.description" > "$dir/$1.json"
}
"$bin/keysat-deliver" --timeout 3 > /dev/null 2>&1
snapshot default
due
"$bin/keysat-deliver" --timeout 3 --allow-private-networks > /dev/null 2>&1
snapshot private
due
KEYSAT_ALLOW_NETWORKS=169.254.169.254/32 "$bin/keysat-deliver" --timeout 3 > /dev/null 2>&1
snapshot metadata
