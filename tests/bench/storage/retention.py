"""Retention: drop/detach the 1M-row history partition while a drain loop runs, and
what a reader holding a lock on pgjobs.jobs does to it; today's batched DELETE for comparison.

  retention.py drop a|b            plain DROP TABLE of the 1M partition (ACCESS EXCLUSIVE on its parent)
  retention.py detach a|b          DETACH PARTITION ... CONCURRENTLY, then DROP of the detached table
  retention.py drop-reader a|b     plain DROP while a transaction has read pgjobs.jobs (held 3 s)
  retention.py detach-reader a|b   DETACH CONCURRENTLY while that reader holds on
  retention.py prune cur N         prune_jobs.sql, batch 1000, N batches, alone
(/work/main/.venv/bin/python, PYTHONPATH=/work/main:/tmp/storage)
"""
import datetime
import sys
import threading
import time

import psycopg

import bench

mode, d = sys.argv[1], sys.argv[2]
DSN = f"postgresql://postgres@127.0.0.1:5432/storage_{d}"
day = (datetime.date.today() - datetime.timedelta(days=2)).strftime("%Y%m%d")
parent = {"a": "pgjobs.jobs_succeeded", "b": "pgjobs.job_history_succeeded"}.get(d)
part = {"a": f"pgjobs.jobs_succeeded_{day}", "b": f"pgjobs.job_history_succeeded_{day}"}.get(d)

if mode == "prune":
    conn = psycopg.connect(DSN, autocommit=True, prepare_threshold=0)
    q = bench.to_psycopg(open("/tmp/storage/sql/prune_cur.sql").read())
    wal0 = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    t0 = time.perf_counter(); n = 0
    for _ in range(int(sys.argv[3])):
        n += conn.execute(q, {"status": "succeeded", "retention": 86400, "batch": 1000}).fetchone()[0]
    el = time.perf_counter() - t0
    wal = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", (wal0,)).fetchone()[0]
    print(f"cur prune: {n} rows in {el:.2f} s = {n / el:.0f} rows/s, WAL {wal / n:.0f} B/row;"
          f" 1M rows would take {1e6 / (n / el):.0f} s")
    sys.exit()

stop = threading.Event()
lat = []


def loop():
    conn, wid = bench.connect(d)
    while not stop.is_set():
        t0 = time.perf_counter()
        bench.enqueue(conn, d)
        rows = bench.claim(conn, d, wid)
        bench.complete(conn, d, wid, rows)
        lat.append((t0, time.perf_counter() - t0))


th = threading.Thread(target=loop); th.start()
time.sleep(2)
reader = None
if mode.endswith("reader"):
    reader = psycopg.connect(DSN)
    reader.execute("SELECT count(*) FROM (SELECT 1 FROM pgjobs.jobs LIMIT 1) AS x")  # txn stays open
    threading.Timer(3.0, reader.rollback).start()
admin = psycopg.connect(DSN, autocommit=True)
t0 = time.perf_counter()
if mode.startswith("drop"):
    admin.execute(f"DROP TABLE {part}")
    t1 = time.perf_counter()
    msg = f"DROP TABLE {part}: {t1 - t0:.3f} s"
else:
    admin.execute(f"ALTER TABLE {parent} DETACH PARTITION {part} CONCURRENTLY")
    t1 = time.perf_counter()
    admin.execute(f"DROP TABLE {part}")
    t2 = time.perf_counter()
    msg = f"DETACH CONCURRENTLY {t1 - t0:.3f} s + DROP detached {t2 - t1:.3f} s"
time.sleep(1)
stop.set(); th.join()
during = [l for (s, l) in lat if s + l >= t0 and s <= t1]
before = sorted(l for (s, l) in lat if s + l < t0)
print(f"{d} {mode}: {msg}; loop iterations (enqueue+claim+complete of 50) overlapping it: {len(during)},"
      f" max {max(during) * 1e3 if during else 0:.1f} ms; median before {before[len(before) // 2] * 1e3:.1f} ms")
