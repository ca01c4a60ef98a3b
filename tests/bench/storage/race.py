"""Races around rows that move (design A: UPDATE across partitions; B: DELETE+INSERT).

  race.py pairs a|b|cur     deterministic two-session cases (T1 holds the row, T2 waits, T1 commits)
  race.py stress a|b|cur S  claim+complete loop vs a session cancelling the head of the queue, S seconds
(/work/main/.venv/bin/python, PYTHONPATH=/work/main:/tmp/storage)
"""
import sys
import threading
import time

import psycopg

import bench

mode, d = sys.argv[1], sys.argv[2]
DSN = f"postgresql://postgres@127.0.0.1:5432/storage_{d}"
LIVE = "pgjobs.jobs" if d == "cur" else "pgjobs.jobs_live"


def run_t2(fn, out):
    try:
        out.append(("ok", fn()))
    except psycopg.Error as e:
        out.append((e.sqlstate, str(e).splitlines()[0]))


def pair(name, t1_sql, t2_fn, job):
    t1 = psycopg.connect(DSN)
    t1.execute(t1_sql, {"id": job["id"]})  # transaction left open: T1 holds the row
    out = []
    th = threading.Thread(target=run_t2, args=(t2_fn, out)); th.start()
    time.sleep(0.5)
    t1.commit(); th.join(); t1.close()
    print(f"{d:>3} {name}: T2 -> {out[0]}")


def claimed_job():
    conn, wid = bench.connect(d)
    bench.enqueue(conn, d, 1)
    rows = bench.claim(conn, d, wid, 1)
    return conn, wid, rows


if mode == "pairs":
    # 1. The rescuer fails a running job (it moves to history) while the
    #    completer's batch waits on that row.
    conn, wid, rows = claimed_job()
    rescue_one = {
        "a": "UPDATE pgjobs.jobs SET status = 'failed', finished_at = now(), worker_id = NULL WHERE id = %(id)s AND status IN ('queued', 'running')",
        "b": "WITH m AS (DELETE FROM pgjobs.jobs_live WHERE id = %(id)s RETURNING *) INSERT INTO pgjobs.job_history SELECT id, queue, task, args, priority, 'failed', run_at, attempts, max_attempts, fingerprint, NULL, started_at, created_at, now(), errors, result, meta FROM m",
        "cur": "UPDATE pgjobs.jobs SET status = 'failed', finished_at = now(), worker_id = NULL WHERE id = %(id)s",
    }[d]
    pair("rescuer fails job / completer's batch waits", rescue_one,
         lambda: len(conn.execute(bench.sql("complete", d), {
             "worker_id": wid, "ids": [rows[0]["id"]], "attempts": [rows[0]["attempts"]],
             "statuses": ["succeeded"], "delays": [0.0], "errors": [None], "results": [None]}).fetchall()),
         rows[0])
    # 2. The completer finishes a job (moves it) while pgjobs.cancel(id) waits.
    conn, wid, rows = claimed_job()
    other = psycopg.connect(DSN, autocommit=True)
    complete_sql = bench.sql("complete", d)
    t1 = psycopg.connect(DSN)
    t1.execute(complete_sql, {"worker_id": wid, "ids": [rows[0]["id"]], "attempts": [rows[0]["attempts"]],
                              "statuses": ["succeeded"], "delays": [0.0], "errors": [None], "results": [None]})
    out = []
    th = threading.Thread(target=run_t2, args=(lambda: other.execute("SELECT pgjobs.cancel(%s)", (rows[0]["id"],)).fetchone(), out)); th.start()
    time.sleep(0.5); t1.commit(); th.join()
    print(f"{d:>3} completer finishes job / pgjobs.cancel(id) waits: T2 -> {out[0]}")
    # 3. A job is cancelled (moves) while pgjobs.retry(id) waits on it.
    conn, wid = bench.connect(d)
    bench.enqueue(conn, d, 1)
    jid = conn.execute(f"SELECT max(id) FROM {LIVE}").fetchone()["max"]
    t1 = psycopg.connect(DSN)
    t1.execute("SELECT pgjobs.cancel(%s)", (jid,))
    out = []
    th = threading.Thread(target=run_t2, args=(lambda: other.execute("SELECT pgjobs.retry(%s)", (jid,)).fetchone(), out)); th.start()
    time.sleep(0.5); t1.commit(); th.join()
    print(f"{d:>3} cancel(id) / retry(id) waits: T2 -> {out[0]}")
    # 4. Two dead-letter replays of the same cancelled job at once.
    bench.enqueue(conn, d, 1)
    jid = conn.execute(f"SELECT max(id) FROM {LIVE}").fetchone()["max"]
    other.execute("SELECT pgjobs.cancel(%s)", (jid,))
    t1 = psycopg.connect(DSN)
    t1.execute("SELECT pgjobs.retry(%s)", (jid,))
    out = []
    th = threading.Thread(target=run_t2, args=(lambda: other.execute("SELECT pgjobs.retry(%s)", (jid,)).fetchone(), out)); th.start()
    time.sleep(0.5); t1.commit(); th.join()
    print(f"{d:>3} retry(id) of a cancelled job / a second retry(id) waits: T2 -> {out[0]}")
else:
    seconds = float(sys.argv[3])
    stop = threading.Event()
    errors = {}
    counts = {"claimed": 0, "cancelled": 0}

    def note(e, who):
        key = (who, e.sqlstate, str(e).splitlines()[0][:90])
        errors[key] = errors.get(key, 0) + 1

    def worker():
        conn, wid = bench.connect(d)
        while not stop.is_set():
            try:
                bench.enqueue(conn, d, 50)
                rows = bench.claim(conn, d, wid, 50)
                counts["claimed"] += len(rows)
                conn.execute(bench.sql("complete", d), {
                    "worker_id": wid, "ids": [r["id"] for r in rows], "attempts": [r["attempts"] for r in rows],
                    "statuses": ["succeeded"] * len(rows), "delays": [0.0] * len(rows),
                    "errors": [None] * len(rows), "results": [None] * len(rows)}).fetchall()
            except psycopg.Error as e:
                note(e, "claim+complete")

    def canceller():
        conn = psycopg.connect(DSN, autocommit=True)
        while not stop.is_set():
            # the job a claim is about to take: the head of the queue
            jid = conn.execute(f"SELECT id FROM {LIVE} WHERE status = 'queued' ORDER BY priority, run_at, id LIMIT 1").fetchone()
            if jid:
                try:
                    conn.execute("SELECT pgjobs.cancel(%s)", jid)
                    counts["cancelled"] += 1
                except psycopg.Error as e:
                    if e.sqlstate != "55000":  # "is running": the claim won, as expected
                        note(e, "cancel")

    ths = [threading.Thread(target=worker), threading.Thread(target=canceller)]
    for t in ths: t.start()
    time.sleep(seconds); stop.set()
    for t in ths: t.join()
    print(f"{d:>3} stress {seconds:.0f}s: {counts}, errors: {errors or 'none'}")
