#!/usr/bin/env bash
# `make install` into a scratch folder, then run the installed binaries for real (init, add an
# endpoint, enqueue, deliver to a local receiver) with the Swift toolchain hidden, as on a host
# that never had it.
set -euo pipefail
cd "$(dirname "$0")/.."
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
make --no-print-directory install DESTDIR="$stage" PREFIX=/usr/local > "$stage.log" 2>&1 || { cat "$stage.log"; exit 1; }
rm -f "$stage.log"
bin="$stage/usr/local/bin"
for f in bin/keysat-enqueue bin/keysat-deliver bin/keysat-webhooks share/man/man1/keysat-deliver.1 \
         share/man/man7/keysat-webhooks.7 lib/systemd/system/keysat-deliver.service \
         share/bash-completion/completions/keysat-webhooks share/bash-completion/completions/keysat-deliver \
         share/zsh/site-functions/_keysat-webhooks lib/systemd/system/keysat-deliver.path \
         share/fish/vendor_completions.d/keysat-webhooks.fish; do
    [ -s "$stage/usr/local/$f" ] || { echo "check-install: $f was not installed" >&2; exit 1; }
done
# One program, three names (issue 24): the other two are links to it, not copies.
for p in keysat-enqueue keysat-deliver; do
    [ "$(readlink "$bin/$p")" = keysat-webhooks ] || { echo "check-install: bin/$p is not a link to keysat-webhooks" >&2; exit 1; }
done
bash -n "$stage/usr/local/share/bash-completion/completions/keysat-deliver"
bash -n "$stage/usr/local/share/bash-completion/completions/keysat-enqueue"
if grep -q swift <<<"$(ldd "$bin"/keysat-*)"; then
    echo "check-install: an installed binary still links the Swift runtime dynamically" >&2
    ldd "$bin"/keysat-* >&2
    exit 1
fi
toolchain=$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")
script='
set -e
db=$1/test.db
"$0/keysat-webhooks" init --db "$db" > /dev/null
"$0/keysat-webhooks" listen --port 0 --count 1 > "$1/listen.out" 2> "$1/listen.err" &
for i in $(seq 100); do grep -q listening "$1/listen.err" && break; sleep 0.05; done
url=$(sed -n "s/.*listening on \(http[^ ]*\).*/\1/p" "$1/listen.err")
"$0/keysat-webhooks" endpoint add "$url" --db "$db" > /dev/null 2>&1
"$0/keysat-enqueue" --db "$db" license.issued "{\"ok\":true}" > /dev/null
"$0/keysat-deliver" --db "$db" --allow-network 127.0.0.1
wait
grep -q "license.issued" "$1/listen.out"
'
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && unshare -m true 2>/dev/null; then
    # A private mount namespace where the toolchain folder is an empty tmpfs.
    unshare -m sh -c "mount -t tmpfs none '$toolchain' && sh -c '$script' '$bin' '$stage'"
    echo "check-install: installed binaries ran with $toolchain hidden"
else
    env -i PATH=/usr/bin:/bin sh -c "$script" "$bin" "$stage"
    echo "check-install: installed binaries ran (no mount namespace here: toolchain only kept off PATH)"
fi
