"""The names pgjobs goes by inside PostgreSQL: advisory-lock keys, application names, channels.

Operators see these in pg_locks and pg_stat_activity, and other processes
(the dashboard, a second worker, a LISTENing application) find pgjobs by
them, so each is defined here once and everything else imports it.
"""

from __future__ import annotations

import hashlib
import re

__all__ = [
    "APP_NAME_APP",
    "APP_NAME_CLI",
    "APP_NAME_DASHBOARD",
    "APP_NAME_LEADER",
    "APP_NAME_LISTENER",
    "APP_NAME_MIGRATE",
    "APP_NAME_WORKER",
    "CONTROL_CHANNEL",
    "DONE_CHANNEL",
    "LEADER_LOCK_CLASSID",
    "LEADER_LOCK_KEY",
    "LEADER_LOCK_OBJID",
    "LIVENESS_LOCK_CLASSID",
    "MIGRATE_LOCK_KEY",
    "WAKE_CHANNEL",
    "liveness_lock_objid",
    "pid_from_application_name",
    "with_pid",
]


def _key(name: str) -> int:
    """A stable signed 64-bit key: the first 8 bytes of sha1(name)."""
    return int.from_bytes(
        hashlib.sha1(name.encode(), usedforsecurity=False).digest()[:8], "big", signed=True
    )


# -- advisory locks ----------------------------------------------------------

#: Held (transaction-scoped) while `pgjobs migrate` runs, so concurrent
#: migrators wait for each other instead of racing. Value: 793301152439471131.
MIGRATE_LOCK_KEY = _key("pgjobs.migrate")

#: Held (session-scoped) by the leader worker, on a dedicated connection
#: (pgjobs/worker/_leader.py). Value: -5701075328894498111, shown in pg_locks
#: as classid 2967582257, objid 2810186433, objsubid 1 (a bigint key is split
#: into its high and low 32 bits). To see the leader:
#: SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1
#:   AND classid = 2967582257 AND objid = 2810186433;
#: The application's own advisory locks only collide with it if they use this
#: exact 64-bit value; the keys here are sha1 hashes of "pgjobs.<name>".
LEADER_LOCK_KEY = _key("pgjobs.leader")

#: LEADER_LOCK_KEY as pg_locks shows it: its high 32 bits in classid ...
LEADER_LOCK_CLASSID = (LEADER_LOCK_KEY >> 32) & 0xFFFFFFFF
#: ... and its low 32 bits in objid (with objsubid 1).
LEADER_LOCK_OBJID = LEADER_LOCK_KEY & 0xFFFFFFFF

#: Held (session-scoped) by every worker that LISTENs, on its listener's
#: connection (pgjobs/worker/_listener.py), in the two-int form
#: pg_advisory_lock(LIVENESS_LOCK_CLASSID, <worker id>): the server frees it
#: the moment the worker's process or connection dies, and the leader's
#: rescuer (pgjobs/sql/rescue.sql) takes a missing lock for a dead worker.
#: Value: 894977988 (the first 31 bits of sha1("pgjobs.worker_liveness"),
#: positive, so that it reads the same as an int4 argument and in pg_locks).
#: A two-int key shows in pg_locks with objsubid 2, a bigint key with
#: objsubid 1: this key space can never meet the leader's or the migrator's
#: 64-bit keys. pg_locks shows the worker's id (modulo 2^32) in objid. To see
#: which workers hold theirs, and on which backend:
#: SELECT objid AS worker_id, pid FROM pg_locks WHERE locktype = 'advisory'
#:   AND objsubid = 2 AND classid = 894977988 AND granted;
LIVENESS_LOCK_CLASSID = (
    int.from_bytes(
        hashlib.sha1(b"pgjobs.worker_liveness", usedforsecurity=False).digest()[:4], "big"
    )
    & 0x7FFFFFFF
)


def liveness_lock_objid(worker_id: int) -> int:
    """The int4 second key of `worker_id`'s liveness lock: its low 32 bits, signed.

    pg_advisory_lock(int4, int4) takes signed values; pg_locks shows the same
    32 bits unsigned in objid, which is `worker_id & 0xFFFFFFFF`.
    """
    low = worker_id & 0xFFFFFFFF
    return low - 2**32 if low >= 2**31 else low


# -- notification channels ---------------------------------------------------

#: Enqueuers NOTIFY this channel, with the queue's name as payload, when a
#: worker of that queue waits for work; workers LISTEN on it. The SQL that
#: sends it (pgjobs/sql/enqueue.sql, the wake function in migrations/) cannot
#: import this, so a unit test checks that they agree.
WAKE_CHANNEL = "pgjobs"

#: pgjobs.cancel() of a running job NOTIFYs this channel with the payload
#: 'cancel WORKER_ID JOB_ID'; each worker's listener LISTENs on it.
CONTROL_CHANNEL = "pgjobs_control"

#: The statements that finish a job NOTIFY this channel with its id, for the
#: jobs a client waits on in app.result() (pgjobs.result_waiters).
DONE_CHANNEL = "pgjobs_done"

# -- application names (pg_stat_activity.application_name) --------------------

#: A worker's pool, and its claiming and completing connections.
APP_NAME_WORKER = "pgjobs-worker"
#: The worker that holds (or tries to take) the leader lock; the dashboard
#: reads the worker's pid from it.
APP_NAME_LEADER = "pgjobs-leader"
#: A worker's LISTEN connection.
APP_NAME_LISTENER = "pgjobs-listener"
#: The dashboard's pool.
APP_NAME_DASHBOARD = "pgjobs-dashboard"
#: An App's own pools, in the application's processes (enqueueing).
APP_NAME_APP = "pgjobs-app"
#: The command-line tools (`pgjobs enqueue`, `jobs`, `stats`, `cron list`).
APP_NAME_CLI = "pgjobs-cli"
#: `pgjobs migrate`.
APP_NAME_MIGRATE = "pgjobs-migrate"

_PID = re.compile(r" pid=(\d+)")


def with_pid(name: str, pid: int) -> str:
    """The application name `name` tagged with a process id: "pgjobs-leader pid=42"."""
    return f"{name} pid={pid}"


def pid_from_application_name(application_name: str | None, name: str) -> int | None:
    """The process id in an application name made by `with_pid(name, ...)`, else None."""
    if application_name is None or not application_name.startswith(name):
        return None
    match = _PID.fullmatch(application_name, len(name))
    return int(match.group(1)) if match else None
