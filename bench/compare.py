#!/usr/bin/env python3
"""Before and after, in the same run: the start-up and throughput rows of `make bench` for two
builds (two folders of release binaries), each against its reference (sqlite3, curl), every
measurement interleaved so that the machine's load falls on both alike. What a closing note
quotes as "no regression".

usage: bench/compare.py BEFORE_BIN AFTER_BIN [--quick] [--throughput-only CONCURRENCY] [--purge-only]

--purge-only: purge's fixed part at a million rows (`make bench SCALE=1`'s purge rows), before and after
in one database, trials interleaved.
"""
import os, statistics, sys

BEFORE, AFTER = sys.argv[1], sys.argv[2]
ONLY = int(sys.argv[sys.argv.index("--throughput-only") + 1]) if "--throughput-only" in sys.argv else None
PURGE = "--purge-only" in sys.argv
sys.argv = [sys.argv[0], AFTER] + [a for a in sys.argv[3:] if a == "--quick"]  # bench.py reads its options
import bench  # noqa: E402


def startup():
    db = bench.make_db("startup.db", ["https://a.example/h", "https://b.example/h", "https://c.example/h"], 20000)
    bench.sql(db, "UPDATE webhook_deliveries SET delivered_at = created_at, attempt_count = 1, "
                  "next_attempt_at = NULL; CREATE TABLE bench(x)")
    rows = bench.hyperfine([
        f"{BEFORE}/keysat-enqueue --db {db} license.issued [1]",
        f"{AFTER}/keysat-enqueue --db {db} license.issued [1]",
        f"sqlite3 {db} 'PRAGMA synchronous=FULL; INSERT INTO bench VALUES (1)'"])
    report("enqueue against sqlite3 insert", rows)
    bench.sql(db, "UPDATE webhook_deliveries SET next_attempt_at = NULL")
    rows = bench.hyperfine([f"{BEFORE}/keysat-deliver --db {db}", f"{AFTER}/keysat-deliver --db {db}",
                            f"sqlite3 {db} 'SELECT count(*) FROM bench'"])
    report("idle run against sqlite3 select", rows)


def report(what, rows):
    (b, bu, bs), (a, au, as_), (r, ru, rs) = rows
    print(f"{what}: before {b * 1000:.2f} ms ({(bu + bs) * 1000:.2f} CPU) = {b / r:.2f}x, "
          f"after {a * 1000:.2f} ms ({(au + as_) * 1000:.2f} CPU) = {a / r:.2f}x, "
          f"reference {r * 1000:.2f} ms ({(ru + rs) * 1000:.2f} CPU)", flush=True)


def throughput():
    port = bench.start_nginx()
    try:
        urls = [f"http://127.0.0.1:{port}/hooks/{i}" for i in range(4)]
        db = bench.make_db("throughput.db", urls, bench.N)
        config = os.path.join(bench.WORK, "curl.cfg")
        bench.curl_config_fair(db, config, os.path.join(bench.WORK, "body.json"))
        for concurrency in [ONLY] if ONLY else [16, 64]:
            rates = {"before": [], "after": [], "curl": []}
            cpus = {"before": [], "after": [], "curl": []}
            for _ in range(5 if not bench.QUICK else 1):
                for name, folder in (("before", BEFORE), ("after", AFTER)):
                    bench.reset(db)
                    seconds, cpu, result = bench.timed_cpu(
                        [os.path.join(folder, "keysat-deliver"), "--db", db, "--concurrency", str(concurrency),
                         "--per-endpoint", str(concurrency), "--json"])
                    assert '"delivered":%d' % bench.N in result.stdout.replace(" ", ""), result.stdout + result.stderr
                    rates[name].append(bench.N / seconds)
                    cpus[name].append(cpu / bench.N * 1e6)
                seconds, cpu, result = bench.timed_cpu(
                    ["curl", "--parallel", "--parallel-max", str(concurrency), "--no-progress-meter", "-K", config])
                rates["curl"].append(bench.N / seconds)
                cpus["curl"].append(cpu / bench.N * 1e6)
            med = {k: statistics.median(v) for k, v in rates.items()}
            cpu = {k: statistics.median(v) for k, v in cpus.items()}
            print(f"throughput, concurrency {concurrency}: before {med['before']:,.0f}/s ({cpu['before']:.0f} us CPU) = "
                  f"{med['before'] / med['curl']:.2f}x curl, after {med['after']:,.0f}/s ({cpu['after']:.0f} us CPU) = "
                  f"{med['after'] / med['curl']:.2f}x curl, curl {med['curl']:,.0f}/s ({cpu['curl']:.0f} us CPU); "
                  f"after/before {med['after'] / med['before']:.2f}", flush=True)
    finally:
        bench.stop_nginx()


def purge():
    db = bench.scale_db(100_000 if bench.QUICK else 1_000_000)
    bench.REPEATS = 1 if bench.QUICK else 5  # the fit's intercept moves with the machine's load: more rounds
    fits = bench.purge_fit(db, [BEFORE, AFTER])
    for name, folder in (("before", BEFORE), ("after", AFTER)):
        fixed, per_row, medians = fits[folder]
        print(f"purge at scale, {name}: deleting " + " / ".join(f"{n:,}" for n in medians) + ": "
              + " / ".join(f"{t * 1000:.0f}" for t in medians.values()) + f" ms; fixed part {fixed * 1000:.0f} ms "
              f"(target <= 100 ms), {per_row * 1e6:.0f} ms per 1,000 more", flush=True)


if __name__ == "__main__":
    try:
        if PURGE:
            purge()
        else:
            if not ONLY:
                startup()
            throughput()
    finally:
        bench.stop_nginx()
        bench.shutil.rmtree(bench.WORK, ignore_errors=True)
