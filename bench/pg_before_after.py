#!/usr/bin/env python3
"""One keysat-deliver run on PostgreSQL, before and after, interleaved on one throw-away durable
cluster and one queue (N deliveries to 4 nginx endpoints), with the same run on SQLite (AFTER's
binaries) as the reference, and with MULTI=1 also two and three AFTER runs at once; asserts that
every delivery was delivered once. DELAY_MS=0.5 puts the runs behind bench/delay_proxy.py, 0.5 ms
each way: a database 1 ms away.

usage: bench/pg_before_after.py BEFORE_BIN AFTER_BIN N REPEATS [CONCURRENCY]"""
import os, subprocess, sys, statistics, resource, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
BEFORE, AFTER = sys.argv[1], sys.argv[2]; N = int(sys.argv[3]); REPS = int(sys.argv[4]); CONC = sys.argv[5] if len(sys.argv) > 5 else "16"
sys.argv = [sys.argv[0], AFTER, "--quick"]
import bench
directory, uri = bench.pg_cluster()
port = bench.start_nginx()
def run(binary, db, runs=1):
    before = resource.getrusage(resource.RUSAGE_CHILDREN); start = time.perf_counter()
    ps = [subprocess.Popen([os.path.join(binary, "keysat-deliver"), "--db", db, "--concurrency", CONC, "--per-endpoint", CONC], env=bench.ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(runs)]
    errs = [p.communicate()[1] for p in ps]; s = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert all(p.returncode == 0 for p in ps), errs
    return N / s, ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) / N * 1e6
try:
    urls = [f"http://127.0.0.1:{port}/hooks/{i}" for i in range(4)]
    bench.pg_queue(uri, urls, N)
    db = bench.make_db("pg-compare.db", urls, N)
    proxy = None
    if os.environ.get("DELAY_MS"):
        import re as _re
        pgport = _re.search(r":(\d+)/", uri).group(1)
        proxy = subprocess.Popen(["python3", os.path.join(os.path.dirname(os.path.abspath(__file__)), "delay_proxy.py"), "47777", pgport, os.environ["DELAY_MS"]])
        time.sleep(0.5)
        runuri = uri.replace(f":{pgport}/", ":47777/")
        passfile = _re.search(r"passfile=([^&]+)", uri).group(1)
        lines = open(passfile).read().splitlines()
        open(passfile, "a").write("".join(l.replace(f":{pgport}:", ":47777:") + "\n" for l in lines))
    else:
        runuri = uri
    r = {k: [] for k in ("sqlite", "before", "after", "after2", "after3")}
    for _ in range(REPS):
        bench.reset(db); r["sqlite"].append(run(AFTER, db))
        for name, b in (("before", BEFORE), ("after", AFTER)):
            bench.pg_reset(uri); r[name].append(run(b, runuri))
            assert bench.psql(uri, "SELECT count(*) FROM webhook_deliveries WHERE delivered_at IS NULL") == "0"
            dup = bench.psql(uri, "SELECT count(*) - count(DISTINCT delivery_id) FROM webhook_delivery_attempts")
            assert dup == "0", dup
        for runs in ((2, 3) if os.environ.get("MULTI") else ()):
            bench.pg_reset(uri); r[f"after{runs}"].append(run(AFTER, uri, runs))
            assert bench.psql(uri, "SELECT count(*) - count(DISTINCT delivery_id) FROM webhook_delivery_attempts") == "0"
        print("  ".join(f"{k} {v[-1][0]:,.0f}/s {v[-1][1]:.0f}µs" for k, v in r.items() if v), flush=True)
    med = {k: statistics.median(x[0] for x in v) for k, v in r.items() if v}
    print(f"median: " + "  ".join(f"{k} {v:,.0f}/s" for k, v in med.items()))
    print(f"PG/SQLite before {med['before']/med['sqlite']:.2f}×, after {med['after']/med['sqlite']:.2f}×; after/before {med['after']/med['before']:.2f}")
finally:
    proxy and proxy.kill()
    bench.stop_nginx()
    subprocess.run([os.path.join(bench.ROOT, "scripts/pg-test-cluster.sh"), "stop", directory], capture_output=True)
