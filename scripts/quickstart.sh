#!/usr/bin/env bash
# Quick start: a signed webhook from enqueue to a local receiver, on a database under ./quickstart.
# Run through `make quickstart`, which builds the release binaries first.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$(swift build $(scripts/release-flags) --show-bin-path)
scripts/link-programs "$bin"
dir=$PWD/quickstart
rm -rf "$dir"
mkdir -p "$dir"
export KEYSAT_DB="$dir/keysat.db"
if [ -t 1 ]; then step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }; else step() { printf '\n$ %s\n' "$*"; }; fi

step keysat-webhooks init
"$bin/keysat-webhooks" init

# The endpoint's secret, in a file readable by us only (secrets never go on a command line).
umask 077
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$dir/secret"

step "keysat-webhooks listen --port 0 --secret-file secret --count 2 &"
"$bin/keysat-webhooks" listen --port 0 --secret-file "$dir/secret" --count 2 \
    > "$dir/received.txt" 2> "$dir/listen.err" &
listener=$!
trap 'kill $listener 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q 'listening on' "$dir/listen.err" 2>/dev/null && break; sleep 0.05; done
url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$dir/listen.err")
echo "listening on $url"

step "keysat-webhooks endpoint add ${url}hooks --secret-file secret"
"$bin/keysat-webhooks" endpoint add "${url}hooks" --secret-file "$dir/secret" --description "quick start"

step "keysat-enqueue license.issued '{\"license_id\":\"lic_123\",\"plan\":\"pro\"}'"
"$bin/keysat-enqueue" license.issued '{"license_id":"lic_123","plan":"pro"}'
step "echo '{\"machine_id\":\"m-42\"}' | keysat-enqueue machine.activated"
echo '{"machine_id":"m-42"}' | "$bin/keysat-enqueue" machine.activated

step "keysat-deliver -v --allow-network 127.0.0.1   # receivers on loopback are refused unless allowed"
"$bin/keysat-deliver" -v --allow-network 127.0.0.1

wait "$listener" || true
trap - EXIT
step "what the receiver printed"
cat "$dir/received.txt"
step "keysat-webhooks endpoint list"
"$bin/keysat-webhooks" endpoint list
step "sqlite3 quickstart/keysat.db 'SELECT id, event_type, attempt_count, last_status_code, delivered_at FROM webhook_deliveries'"
if command -v sqlite3 >/dev/null; then
    sqlite3 -header -column "$KEYSAT_DB" 'SELECT id, event_type, attempt_count, last_status_code, delivered_at FROM webhook_deliveries'
else
    echo "(install sqlite3 to see the rows)"
fi
printf '\nDone. The database is %s; remove ./quickstart when finished.\n' "$KEYSAT_DB"
