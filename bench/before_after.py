#!/usr/bin/env python3
"""Before and after across a schema change: compare.py's rows for two builds whose databases are
not interchangeable (an older build refuses a newer schema with 75), so each build gets its own
database, made by its own `init`, with the same rows. Every measurement is interleaved.

usage: bench/before_after.py BEFORE_BIN AFTER_BIN [startup] [throughput] [keyed]

startup:    keysat-enqueue against sqlite3's insert (same durability), the idle run against
            sqlite3's select, before and after; and after's enqueue with a filter on each of three
            endpoints (bench.py's row). Wall, user + system CPU, ratio to the reference.
throughput: keysat-deliver, 10,000 due to four nginx endpoints, concurrency 16 and 64, rounds of
            before and after in turn; CPU per delivery.
keyed:      after only: the same with every delivery carrying an ordering key (100 keys),
            against the same rows without keys, in turn.
"""
import os, statistics, sys

BEFORE, AFTER = sys.argv[1], sys.argv[2]
WHAT = sys.argv[3:] or ["startup", "throughput", "keyed"]
sys.argv = [sys.argv[0], AFTER]
import bench  # noqa: E402

bench.N = 10000
ENDPOINTS = ["https://a.example/h", "https://b.example/h", "https://c.example/h"]
FILTERS = ['{"data":{"plan":{"$in":["pro","team"]}}}',
           '{"$or":[{"data":{"seats":{"$gte":1}}},{"data":{"plan":"enterprise"}}]}',
           '{"event_type":{"$startsWith":"license."},"data":{"email":{"$exists":false}}}']


def make_db(folder, name, urls, count):
    bench.BIN = folder  # `init` and `endpoint add` by the build that will use the file
    return bench.make_db(name, urls, count)


def startup_db(folder, name):
    db = make_db(folder, name, ENDPOINTS, 20000)
    bench.sql(db, "UPDATE webhook_deliveries SET delivered_at = created_at, attempt_count = 1, "
                  "next_attempt_at = NULL; CREATE TABLE bench(x)")
    return db


def line(what, rows, names):
    ref = rows[-1][0]
    cells = [f"{n} {w * 1000:.2f} ms (CPU {(u + s) * 1000:.2f}) = {w / ref:.3f}x" for n, (w, u, s) in zip(names, rows)]
    print(f"{what}: " + "; ".join(cells), flush=True)


def startup():
    before, after = startup_db(BEFORE, "startup-before.db"), startup_db(AFTER, "startup-after.db")
    filtered = startup_db(AFTER, "startup-filters.db")
    bench.BIN = AFTER
    for (endpoint,), text in zip([r.split("|") for r in bench.sql(filtered, "SELECT id FROM webhook_endpoints")
                                  .splitlines()], FILTERS):
        bench.tool("keysat-webhooks", "endpoint", "update", endpoint, "--filter", text, db=filtered)
    rows = bench.hyperfine([
        f"{BEFORE}/keysat-enqueue --db {before} license.issued [1]",
        f"{AFTER}/keysat-enqueue --db {after} license.issued [1]",
        f"{AFTER}/keysat-enqueue --db {filtered} license.issued '{{\"plan\":\"pro\",\"seats\":3}}'",
        f"sqlite3 {after} 'PRAGMA synchronous=FULL; INSERT INTO bench VALUES (1)'"])
    line("enqueue", rows, ["before", "after", "after, 3 filters", "sqlite3 insert"])
    for db in (before, after):
        bench.sql(db, "UPDATE webhook_deliveries SET next_attempt_at = NULL")
    rows = bench.hyperfine([f"{BEFORE}/keysat-deliver --db {before}", f"{AFTER}/keysat-deliver --db {after}",
                            f"sqlite3 {after} 'SELECT count(*) FROM bench'"])
    line("idle run", rows, ["before", "after", "sqlite3 select"])


def deliver(folder, db, concurrency):
    bench.reset(db)
    seconds, cpu, result = bench.timed_cpu([os.path.join(folder, "keysat-deliver"), "--db", db, "--concurrency",
                                            str(concurrency), "--per-endpoint", str(concurrency), "--json"])
    assert '"delivered":%d' % bench.N in result.stdout.replace(" ", ""), result.stdout + result.stderr
    return bench.N / seconds, cpu / bench.N * 1e6


def rounds(runs, concurrency, repeats=5):
    rates, cpus = {n: [] for n, _, _ in runs}, {n: [] for n, _, _ in runs}
    for _ in range(repeats):
        for name, folder, db in runs:
            rate, cpu = deliver(folder, db, concurrency)
            rates[name].append(rate)
            cpus[name].append(cpu)
    print(f"throughput, concurrency {concurrency}: " + "; ".join(
        f"{n} {statistics.median(rates[n]):,.0f}/s ({statistics.median(cpus[n]):.0f} us CPU per delivery; "
        f"runs {', '.join(f'{r:,.0f}' for r in rates[n])})" for n, _, _ in runs), flush=True)


def keyed(db):
    """Every delivery of `db` gets one of 100 keys and its sequence number within (endpoint, key),
    as `keysat-enqueue --ordering-key` would have given them, in the order they were created."""
    bench.sql(db, """
UPDATE webhook_deliveries SET keysat_webhooks_ordering_key = k.key, keysat_webhooks_sequence = k.seq
FROM (SELECT rowid AS r, 'lic_' || (rowid % 100) AS key,
             row_number() OVER (PARTITION BY endpoint_id, rowid % 100 ORDER BY created_at, id) AS seq
      FROM webhook_deliveries) AS k WHERE webhook_deliveries.rowid = k.r;
INSERT INTO keysat_webhooks_key_sequences (endpoint_id, ordering_key, last)
SELECT endpoint_id, keysat_webhooks_ordering_key, max(keysat_webhooks_sequence) FROM webhook_deliveries
GROUP BY 1, 2;""")


def throughput(with_keys):
    port = bench.start_nginx()
    try:
        urls = [f"http://127.0.0.1:{port}/hooks/{i}" for i in range(4)]
        if with_keys:
            plain = make_db(AFTER, "plain.db", urls, bench.N)
            ordered = make_db(AFTER, "keyed.db", urls, bench.N)
            keyed(ordered)
            runs = [("after, no keys", AFTER, plain), ("after, 100 ordering keys", AFTER, ordered)]
        else:
            runs = [("before", BEFORE, make_db(BEFORE, "tp-before.db", urls, bench.N)),
                    ("after", AFTER, make_db(AFTER, "tp-after.db", urls, bench.N))]
        for concurrency in (16, 64):
            rounds(runs, concurrency, 3 if with_keys else 5)
    finally:
        bench.stop_nginx()


if __name__ == "__main__":
    try:
        if "startup" in WHAT:
            startup()
        if "throughput" in WHAT:
            throughput(False)
        if "keyed" in WHAT:
            throughput(True)
    finally:
        bench.stop_nginx()
        bench.shutil.rmtree(bench.WORK, ignore_errors=True)
