"""EXPLAIN ANALYZE of claim (and complete) per design, custom and generic plans, rolled back.

/work/main/.venv/bin/python explain.py [claim|complete] [cur a b]   (PYTHONPATH=/work/main)
"""
import re
import sys

import psycopg

from pgjobs._sql import split

STMT = sys.argv[1] if len(sys.argv) > 1 else "claim"
DESIGNS = sys.argv[2:] or ["cur", "a", "b"]


def numbered(text):
    names = []

    def sub(m):
        if m.group(1) not in names:
            names.append(m.group(1))
        return f"${names.index(m.group(1)) + 1}"

    out = "".join(re.sub(r"(?<![:\w]):([A-Za-z_]\w*)", sub, t) if code else t for code, t in split(text))
    return out, names


for d in DESIGNS:
    conn = psycopg.connect('postgresql://postgres@127.0.0.1:5432/storage_' + {'ap': 'a'}.get(d, d), autocommit=True)
    wid = conn.execute("INSERT INTO pgjobs.workers (host, pid, queues, concurrency) VALUES ('x', 1, '{default}', 50) RETURNING id").fetchone()[0]
    text, names = numbered(open(f"/tmp/storage/sql/claim_{d}.sql").read())
    conn.execute(f"PREPARE claim AS {text}")
    cargs = {"queues": "'{default}'", "after_priorities": "'{-1}'", "after_run_ats": "'{-infinity}'",
             "after_ids": "'{0}'", "limit": "50", "worker_id": str(wid)}
    claim_exec = "EXECUTE claim(" + ", ".join(cargs[n] for n in names) + ")"
    if STMT == "complete":
        ctext, cnames = numbered(open(f"/tmp/storage/sql/complete_{d}.sql").read())
        conn.execute(f"PREPARE complete AS {ctext}")
    for mode in ("force_custom_plan", "force_generic_plan"):
        conn.execute(f"SET plan_cache_mode = {mode}")
        with conn.transaction(force_rollback=True):
            if STMT == "claim":
                plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + claim_exec).fetchall()
            else:
                ids = [r[0] for r in conn.execute(claim_exec).fetchall()]
                args = {"worker_id": str(wid), "ids": f"'{{{','.join(map(str, ids))}}}'",
                        "attempts": "'{" + ",".join("1" for _ in ids) + "}'",
                        "statuses": "'{" + ",".join("succeeded" for _ in ids) + "}'",
                        "delays": "'{" + ",".join("0" for _ in ids) + "}'",
                        "errors": "'{" + ",".join("NULL" for _ in ids) + "}'",
                        "results": "'{" + ",".join("NULL" for _ in ids) + "}'"}
                plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) EXECUTE complete("
                                    + ", ".join(args[n] for n in cnames) + ")").fetchall()
        print(f"===== {STMT} design={d} {mode}")
        print("\n".join(r[0] for r in plan))
    conn.execute("DELETE FROM pgjobs.workers WHERE id = %s", (wid,))
    conn.close()
