#!/usr/bin/env bash
# Checks the systemd units with systemd-analyze verify, against the binaries just built and
# the man pages of this tree (Documentation= must resolve).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v systemd-analyze >/dev/null; then
    echo "check-units: systemd-analyze not installed, skipped"
    exit 0
fi
bin=${1:-$(swift build --show-bin-path)}
# The build folder's keysat-enqueue and keysat-deliver are links to the one program (issue 24).
[ -n "${1:-}" ] || scripts/link-programs "$bin"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/man/man1" "$work/man/man7" "$work/units"
cp man/*.1 "$work/man/man1/"
cp man/*.7 "$work/man/man7/" 2>/dev/null || true
for unit in cron/*.service cron/*.timer cron/*.path; do
    [ -e "$unit" ] || continue
    sed "s#/usr/local/bin/#$bin/#g" "$unit" > "$work/units/$(basename "$unit")"
done
# Units made for a database elsewhere must pass too.
mkdir -p "$work/other"
"$bin/keysat-webhooks" units --db /srv/keysat/licensing.db --bindir "$bin" --output-dir "$work/other"
# And units for a PostgreSQL database (a service and a timer, no path unit).
mkdir -p "$work/postgres"
"$bin/keysat-webhooks" units --db 'postgresql://keysat@db1.example/keysat?sslmode=verify-full' --bindir "$bin" \
    --output-dir "$work/postgres"
# Unknown keys are only warnings to systemd-analyze: any output at all fails the check.
for set in units other postgres; do
    if ! out=$(MANPATH="$work/man" systemd-analyze verify "$work/$set"/* 2>&1) || [ -n "$out" ]; then
        echo "$out"
        echo "check-units: systemd-analyze verify failed ($set)" >&2
        exit 1
    fi
done
# The sandbox stays as tight as systemd-analyze can tell from the file.
exposure=$(systemd-analyze security --offline=yes "$work/units/keysat-deliver.service" 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
echo "check-units: systemd-analyze security: exposure $exposure"
awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 1.5) }' || { echo "check-units: exposure $exposure is above 1.5" >&2; exit 1; }
echo "check-units: $(ls "$work/units" | tr '\n' ' ')verified"
