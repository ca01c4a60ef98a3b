"""Storage prototypes: timings of claim/complete/enqueue per design, interleaved.

Run with /work/main/.venv/bin/python and PYTHONPATH=/work/main (for pgjobs._sql.to_psycopg).
  bench.py complete ROUNDS BATCHES      claim 50 + complete 50, timed per statement
  bench.py drain SECONDS [designs]      enqueue 50 -> claim 50 -> complete 50 loop
  bench.py explain                      claim plans (custom and generic), per design
Databases: storage_cur, storage_a, storage_b (build.sh, load.sh).
"""

import json
import statistics
import sys
import time

import psycopg
from psycopg.rows import dict_row

from pgjobs._sql import to_psycopg

DESIGNS = ("cur", "a", "b")
HOT = {"cur": "pgjobs.jobs", "a": "pgjobs.jobs_live", "b": "pgjobs.jobs_live"}


def sql(name, design):
    return to_psycopg(open(f"/tmp/storage/sql/{name}_{design}.sql").read())


def connect(design):
    conn = psycopg.connect(
        f"postgresql://postgres@127.0.0.1:5432/storage_{design}",
        autocommit=True, prepare_threshold=0, row_factory=dict_row,
        options="-c synchronous_commit=off",
    )
    wid = conn.execute(
        "INSERT INTO pgjobs.workers (host, pid, queues, concurrency) VALUES ('bench', 1, '{default}', 50) RETURNING id"
    ).fetchone()["id"]
    return conn, wid


def claim(conn, design, wid, n=50):
    return conn.execute(sql("claim", design), {
        "queues": ["default"], "after_priorities": [-1], "after_run_ats": ["-infinity"],
        "after_ids": [0], "limit": n, "worker_id": wid}).fetchall()


def complete(conn, design, wid, rows, fail_every=0):
    statuses = ["succeeded"] * len(rows)
    errors = [None] * len(rows)
    if fail_every:
        for i in range(0, len(rows), fail_every):
            statuses[i] = "queued"  # a retry: stays live in every design
            errors[i] = json.dumps({"type": "E", "message": "boom", "attempt": rows[i]["attempts"]})
    done = conn.execute(sql("complete", design), {
        "worker_id": wid, "ids": [r["id"] for r in rows], "attempts": [r["attempts"] for r in rows],
        "statuses": statuses, "delays": [0.0] * len(rows), "errors": errors,
        "results": [None] * len(rows)}).fetchall()
    assert len(done) == len(rows), (design, len(done), len(rows))


def enqueue(conn, design, n=50):
    conn.execute(sql("enqueue_many", design), {
        "tasks": ["bench.noop"] * n, "args": [json.dumps({"n": i}) for i in range(n)],
        "queues": ["default"] * n, "priorities": [2] * n, "run_ats": [None] * n,
        "delays": [0.0] * n, "fingerprints": [None] * n, "max_attempts": [3] * n, "metas": [None] * n,
    }).fetchall()


def cmd_complete(rounds, batches):
    conns = {d: connect(d) for d in DESIGNS}
    res = {d: {"claim": [], "complete": [], "enqueue": []} for d in DESIGNS}
    raw = {d: {"claim": [], "complete": [], "enqueue": []} for d in DESIGNS}
    for r in range(rounds):
        for d in DESIGNS:
            conn, wid = conns[d]
            tc, tk, te = [], [], []
            for _ in range(batches):
                t0 = time.perf_counter(); enqueue(conn, d); t1 = time.perf_counter()
                rows = claim(conn, d, wid); t2 = time.perf_counter()
                complete(conn, d, wid, rows, fail_every=25); t3 = time.perf_counter()
                te.append(t1 - t0); tk.append(t2 - t1); tc.append(t3 - t2)
            for k, v in (("enqueue", te), ("claim", tk), ("complete", tc)):
                res[d][k].append(statistics.median(v) * 1e6 / 50)  # us per job, median batch of this round
                raw[d][k] += v
    for d in DESIGNS:
        line = [f"{d:>3}"]
        for k in ("enqueue", "claim", "complete"):
            v = res[d][k]
            p10 = sorted(raw[d][k])[len(raw[d][k]) // 10] * 1e6 / 50
            line.append(f"{k} {statistics.median(v):6.1f} us/job [{min(v):.1f}-{max(v):.1f}] p10 {p10:.1f}")
        print("  ".join(line))


def stats(conn, design):
    rel = HOT[design]
    r = conn.execute(
        "SELECT n_live_tup, n_dead_tup, autovacuum_count, pg_total_relation_size(relid) AS total,"
        " pg_relation_size(relid) AS heap FROM pg_stat_user_tables WHERE relid = %s::regclass",
        (rel,)).fetchone()
    return r


def vacuumer(design, stop, every, log):
    """Stands in for autovacuum, which is off on this shared server (postgresql.conf):
    every `every` s, VACUUM the hot table when its dead rows pass 0001's threshold
    (50 + 1% of its rows, autovacuum_vacuum_cost_delay = 0, so no throttling)."""
    conn = psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/storage_{design}", autocommit=True)
    rel = HOT[design]
    while not stop.wait(every):
        live, dead = conn.execute(
            "SELECT n_live_tup, n_dead_tup FROM pg_stat_user_tables WHERE relid = %s::regclass", (rel,)).fetchone()
        if dead > 50 + 0.01 * live:
            t0 = time.perf_counter()
            conn.execute(f"VACUUM {rel}")
            log.append(time.perf_counter() - t0)
    conn.close()


def cmd_drain(seconds, designs, vacuum_every=0.0):
    import threading
    for d in designs:
        conn, wid = connect(d)
        before = stats(conn, d)
        stop, vlog = threading.Event(), []
        if vacuum_every:
            vt = threading.Thread(target=vacuumer, args=(d, stop, vacuum_every, vlog)); vt.start()
        n = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            enqueue(conn, d)
            rows = claim(conn, d, wid)
            complete(conn, d, wid, rows)
            n += len(rows)
        el = time.perf_counter() - t0
        stop.set()
        if vacuum_every:
            vt.join()
        time.sleep(1)
        after = stats(conn, d)
        print(f"{d:>3} drained {n} jobs in {el:.1f} s = {n / el:.0f} jobs/s; hot table {HOT[d]}:"
              f" live {after['n_live_tup']} dead {after['n_dead_tup']} autovacuums +{after['autovacuum_count'] - before['autovacuum_count']}"
              f" total {after['total'] / 2**20:.1f} MB (heap {after['heap'] / 2**20:.1f} MB; before {before['total'] / 2**20:.1f} MB)"
              f" vacuums {len(vlog)} taking {sum(vlog):.1f} s",
              flush=True)
        conn.close()


if __name__ == "__main__":
    if sys.argv[1] == "complete":
        cmd_complete(int(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1] == "drain":
        cmd_drain(float(sys.argv[2]), sys.argv[3:] or DESIGNS)
    elif sys.argv[1] == "drainvac":  # drainvac SECONDS EVERY [designs]
        cmd_drain(float(sys.argv[2]), sys.argv[4:] or DESIGNS, float(sys.argv[3]))
