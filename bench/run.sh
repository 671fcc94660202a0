#!/usr/bin/env bash
# The benchmark: installs what it needs (scripts/setup.sh bench: only what is missing), builds
# the binaries as they are installed (release, --static-swift-stdlib), runs everything on
# loopback, prints a table and writes it to docs/BENCHMARKS.md. Run through `make bench`.
# The throughput rows run once more on Debian 13's libcurl, which bench/libcurl-8.14.sh fetches
# from bookworm-backports once (cached outside the clone).
set -euo pipefail
cd "$(dirname "$0")/.."
# What the benchmark needs is said, with everything else the project needs, in scripts/setup.sh.
scripts/setup.sh bench
bin=$(swift build $(scripts/release-flags) --show-bin-path)
scripts/link-programs "$bin"
exec python3 bench/bench.py "$bin" "$@"
