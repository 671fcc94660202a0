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
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/man/man1" "$work/man/man7" "$work/units"
cp man/*.1 "$work/man/man1/"
cp man/*.7 "$work/man/man7/" 2>/dev/null || true
for unit in cron/*.service cron/*.timer cron/*.path; do
    [ -e "$unit" ] || continue
    sed "s#/usr/local/bin/#$bin/#g" "$unit" > "$work/units/$(basename "$unit")"
done
# Unknown keys are only warnings to systemd-analyze: any output at all fails the check.
if ! out=$(MANPATH="$work/man" systemd-analyze verify "$work"/units/* 2>&1) || [ -n "$out" ]; then
    echo "$out"
    echo "check-units: systemd-analyze verify failed" >&2
    exit 1
fi
echo "check-units: $(ls "$work/units" | tr '\n' ' ')verified"
