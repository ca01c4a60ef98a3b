"""A chain of dependent jobs survives the SIGKILL of the worker running its middle step."""

from __future__ import annotations

import signal

from tests.apps.workflow import app, step
from tests.conftest import wait_until

APP = "tests.apps.workflow:app"
#: A dead worker's jobs are rescued within about two seconds.
FAST = [
    "--heartbeat-interval",
    "0.3",
    "--stale-after",
    "2",
    "--rescue-interval",
    "0.5",
    "--poll-interval",
    "0.5",
]


def status(conn, job_id):
    return conn.execute("SELECT status::text FROM pgjobs.jobs WHERE id = %s", [job_id]).fetchone()[
        0
    ]


def test_a_chain_survives_a_sigkill_mid_chain(dsn, conn, start_worker):
    app.dsn = dsn
    try:
        first = step.enqueue("a")
        middle = step.options(depends_on=[first]).enqueue("b", 30.0)
        last = step.options(depends_on=[middle]).enqueue("c")
        assert status(conn, last) == "blocked"
        victim = start_worker(APP, *FAST)
        wait_until(lambda: status(conn, middle) == "running", timeout=30)
        wait_until(
            lambda: (
                conn.execute("SELECT count(*) FROM test_runs WHERE job_key = 'b'").fetchone()[0]
                == 1
            ),
            timeout=30,
        )
        victim.signal(signal.SIGKILL)
        victim.wait()
        # The middle step was lost mid-run: the last one must still be waiting.
        assert status(conn, last) == "blocked"
        # The middle step's second run is short: rewrite its arguments before the rescue.
        conn.execute(
            "UPDATE pgjobs.jobs_live SET args = jsonb_set(args, '{seconds}', '0') WHERE id = %s",
            [middle],
        )
        start_worker(APP, *FAST)
        wait_until(lambda: status(conn, last) == "succeeded", timeout=60, interval=0.1)
        runs = conn.execute("SELECT job_key, pid, note FROM test_runs ORDER BY at, id").fetchall()
        assert [key for key, _pid, _note in runs] == ["a", "b", "b", "c"]
        assert runs[1][1] == victim.pid
        assert runs[2][1] != victim.pid
        assert runs[3][2] == "a,b,c"  # the last step read its parent's result
        assert app.result(last) == ["a", "b", "c"]
    finally:
        app.close()
