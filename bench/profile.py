#!/usr/bin/env python3
"""Profiles one keysat-deliver run of the throughput benchmark (20,000 deliveries to nginx on
loopback) with perf: usage: bench/profile.py BIN_DIR [CONCURRENCY]. Prints perf's report of
where the CPU time went, by shared object and by symbol (docs/BENCHMARKS.md cites it)."""
import os, subprocess, sys

sys.argv = [sys.argv[0], *sys.argv[1:]]
import bench  # noqa: E402  (the benchmark's helpers: nginx, the database)

concurrency = sys.argv[2] if len(sys.argv) > 2 else "16"
port = bench.start_nginx()
try:
    db = bench.make_db("profile.db", [f"http://127.0.0.1:{port}/hooks/{i}" for i in range(4)], bench.N)
    data = os.path.join(bench.WORK, "perf.data")
    subprocess.run(["perf", "record", "-q", "-F", "2000", "-g", "-o", data, os.path.join(bench.BIN, "keysat-deliver"),
                    "--db", db, "--concurrency", concurrency, "--per-endpoint", concurrency], env=bench.ENV, check=True)
    for sort in ("dso", "symbol"):
        report = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", sort, "--stdio", "-g", "none",
                                 "--percent-limit", "0.7"], capture_output=True, text=True, check=True).stdout
        print("\n".join(l for l in report.splitlines() if l and not l.startswith("#")))
finally:
    bench.stop_nginx()
