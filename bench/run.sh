#!/usr/bin/env bash
# The benchmark: installs what it needs from Debian's packages (only what is missing), builds
# the binaries as they are installed (release, --static-swift-stdlib), runs everything on
# loopback, prints a table and writes it to docs/BENCHMARKS.md. Run through `make bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for pkg in nginx-light hyperfine time sqlite3 python3; do
    case $pkg in nginx-light) command -v nginx >/dev/null && continue ;; esac
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "bench: installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
bin=$(swift build -c release --static-swift-stdlib --show-bin-path)
exec python3 bench/bench.py "$bin" "$@"
