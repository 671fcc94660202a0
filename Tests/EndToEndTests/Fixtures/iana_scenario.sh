#!/usr/bin/env bash
# The refused table, entry by entry, run by NetworkPolicyScenarioTests inside
# `unshare --mount --net` (as root): a private network namespace in which each address the test
# names is put on the loopback interface where the kernel takes it, and one dual-stack receiver
# answers on all of them. Every address is delivered to by default (all must be refused by the
# policy, before any connection), then again with the assigned ones allowed (they must arrive:
# the policy, not the network, was what refused them). The public controls must arrive at once.
#
# usage: iana_scenario.sh DIR BIN_DIR CONTROL... -- ADDRESS...
set -euo pipefail
dir=$1 bin=$2
shift 2
controls=()
while [ "$1" != -- ]; do controls+=("$1"); shift; done
shift
addresses=("$@")
ip link set lo up
assigned=()
for address in "${controls[@]}" "${addresses[@]}"; do
    case $address in *:*) length=128 ;; *) length=32 ;; esac
    if ip addr add "$address/$length" dev lo 2> /dev/null; then assigned+=("$address"); fi
done
printf '%s\n' "${assigned[@]}" > "$dir/assigned"
cat > "$dir/server.py" <<'PY'
import os, socket, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(204)
        self.end_headers()
        with open(sys.argv[1] + "/requests", "a") as f:
            f.write(self.path + "\n")
    def log_message(self, *args):
        pass
class Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    request_queue_size = 128
    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()
server = Server(("::", 0), Handler)
with open(sys.argv[1] + "/port.tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(sys.argv[1] + "/port.tmp", sys.argv[1] + "/port")
server.serve_forever()
PY
python3 "$dir/server.py" "$dir" &
server=$!
trap 'kill $server 2> /dev/null || true' EXIT
for _ in $(seq 200); do [ -e "$dir/port" ] && break; sleep 0.05; done
port=$(cat "$dir/port")
export KEYSAT_DB="$dir/keysat.db"
unset KEYSAT_ALLOW_NETWORKS
"$bin/keysat-webhooks" init > /dev/null
for address in "${controls[@]}" "${addresses[@]}"; do
    case $address in *:*) host="[$address]" ;; *) host=$address ;; esac
    "$bin/keysat-webhooks" endpoint add "http://$host:$port/$address" --description "$address" > /dev/null 2>&1
done
"$bin/keysat-enqueue" license.issued '{"n":1}' > /dev/null
snapshot() {
    sqlite3 -json "$KEYSAT_DB" "SELECT e.description, d.delivered_at, d.last_error
        FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id" > "$dir/$1.json"
}
"$bin/keysat-deliver" --timeout 2 --connect-timeout 1 --breaker 1000 2> "$dir/default.err" || true
snapshot default
sqlite3 "$KEYSAT_DB" "UPDATE webhook_deliveries SET next_attempt_at = '2000-01-01T00:00:00.000000+00:00' WHERE next_attempt_at IS NOT NULL"
allow=$(IFS=,; echo "${assigned[*]}")
KEYSAT_ALLOW_NETWORKS=$allow "$bin/keysat-deliver" --timeout 5 --connect-timeout 3 --breaker 1000 2> "$dir/allowed.err" || true
snapshot allowed
