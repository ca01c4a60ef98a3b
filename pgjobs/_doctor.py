"""`pgjobs doctor`: measure a database's health as a queue sees it, and judge each measure.

Each check is a pure function from measured values (dataclasses filled from
the `doctor_*.sql` queries) to findings, so the thresholds are tested
without a database and the dashboard can show the same findings. The
thresholds are the module's constants, documented in the README
("Operating the queue").
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import psycopg
from psycopg.rows import dict_row

from pgjobs import _migrate, _names, _sql, _window
from pgjobs.errors import SchemaVersionError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    _D = TypeVar("_D", bound=DataclassInstance)

__all__ = [
    "EXIT_CODES",
    "Finding",
    "Limits",
    "Verdict",
    "diagnose",
    "exit_code",
]

Verdict = Literal["ok", "warn", "fail"]

#: What `python -m pgjobs doctor` exits with for the worst verdict found.
EXIT_CODES: Mapping[Verdict, int] = {"ok": 0, "warn": 1, "fail": 2}

# -- thresholds ----------------------------------------------------------------

#: Dead rows as a share of live + dead rows that warn, and that fail ...
DEAD_RATIO_WARN = 0.2
DEAD_RATIO_FAIL = 0.5
#: ... once a table has at least this many dead rows (a small table's ratio means little).
DEAD_ROWS_MIN = 10_000
#: Estimated size over the size the live rows need that warns ...
BLOAT_RATIO_WARN = 3.0
#: ... for a table or index of at least this many bytes.
BLOAT_BYTES_MIN = 16 * 1024 * 1024
#: Per-row overhead in a heap page (tuple header 24 bytes, line pointer 4) ...
HEAP_ROW_OVERHEAD = 28
#: ... and in a btree page (index tuple header 8, line pointer 4), which
#: btree fills to 90%.
INDEX_ROW_OVERHEAD = 12
INDEX_FILL = 0.9
#: Seconds a transaction may hold back the xmin horizon before it warns, and fails.
XMIN_WARN_SECONDS = 60.0
XMIN_FAIL_SECONDS = 600.0
#: Transactions a replication slot or prepared transaction may hold back
#: (xid age) before it warns, and fails.
XMIN_WARN_XIDS = 1_000_000
XMIN_FAIL_XIDS = 100_000_000
#: Seconds a session may sit idle inside a transaction before it warns, and fails.
IDLE_WARN_SECONDS = 30.0
IDLE_FAIL_SECONDS = 300.0
#: Share of the NOTIFY queue in use that warns, and fails (at 100% NOTIFY errors).
NOTIFY_WARN = 0.1
NOTIFY_FAIL = 0.5
#: Share of the connections open to non-superusers in use that warns, and fails.
CONNECTIONS_WARN = 0.8
CONNECTIONS_FAIL = 0.95
#: A worker silent this long is dead: the worker's default stale_after.
STALE_WORKER_SECONDS = 30.0
#: A running job whose worker has been silent this long (twice stale_after,
#: by which time a leader would have rescued it) or has no row warns.
ORPHAN_SECONDS = 2 * STALE_WORKER_SECONDS
#: Seconds the oldest due job of a queue may wait before it warns, and fails.
DUE_WARN_SECONDS = 60.0
DUE_FAIL_SECONDS = 900.0
#: Failed jobs in the last hour that warn when they are also at least
#: FAILED_GROWTH times the hour before's and the last day's hourly average.
FAILED_MIN = 10
FAILED_GROWTH = 2.0

#: The storage parameters that migration 0001 gives pgjobs.jobs (jobs_live since 0009): vacuum after
#: 1% of rows change, without cost throttling. A unit test pins them to it.
JOBS_RELOPTIONS: Mapping[str, str] = {
    "autovacuum_vacuum_scale_factor": "0.01",
    "autovacuum_analyze_scale_factor": "0.02",
    "autovacuum_vacuum_cost_delay": "0",
}


@dataclasses.dataclass(frozen=True)
class Limits:
    """The thresholds of the time-based checks (the module's constants by default)."""

    xmin_warn_seconds: float = XMIN_WARN_SECONDS
    xmin_fail_seconds: float = XMIN_FAIL_SECONDS
    idle_warn_seconds: float = IDLE_WARN_SECONDS
    idle_fail_seconds: float = IDLE_FAIL_SECONDS
    stale_worker_seconds: float = STALE_WORKER_SECONDS
    orphan_seconds: float = ORPHAN_SECONDS
    due_warn_seconds: float = DUE_WARN_SECONDS
    due_fail_seconds: float = DUE_FAIL_SECONDS


@dataclasses.dataclass(frozen=True)
class Finding:
    """One check's verdict.

    Attributes:
        check: what was checked, e.g. "xmin" or "queue default".
        verdict: ok, warn or fail.
        value: the measured value, e.g. 0.42 or "12 s".
        detail: what was measured, in a sentence.
        fix: what to do about it ("" when ok).
    """

    check: str
    verdict: Verdict
    value: float | int | str | None
    detail: str
    fix: str = ""


def _level(value: float, warn: float, fail: float) -> Verdict:
    if value >= fail:
        return "fail"
    return "warn" if value >= warn else "ok"


def _worst(verdicts: Sequence[Verdict]) -> Verdict:
    return max(verdicts, key=lambda v: EXIT_CODES[v], default="ok")


def exit_code(findings: Sequence[Finding]) -> int:
    """0 when every finding is ok, 1 with a warning, 2 with a failure."""
    return EXIT_CODES[_worst([f.verdict for f in findings])]


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


# -- dead tuples and bloat -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Relation:
    """A pgjobs table or index as doctor_relations.sql measures it."""

    name: str
    is_index: bool
    table_name: str
    bytes: int
    block_size: int
    live_rows: int
    dead_rows: int
    entries: int
    row_width: float | None
    last_vacuum: Any = None


def needed_bytes(relation: Relation) -> int | None:
    """The bytes the live rows (or entries) would take packed, or None without pg_stats widths.

    A heap row takes its average width plus HEAP_ROW_OVERHEAD; an index
    entry its key width plus INDEX_ROW_OVERHEAD at INDEX_FILL. Every
    relation needs at least one page (an index two: its metapage).
    """
    if relation.row_width is None:
        return None
    if relation.is_index:
        per_page = relation.block_size * INDEX_FILL
        per_row = relation.row_width + INDEX_ROW_OVERHEAD
        pages = math.ceil(relation.entries * per_row / per_page) + 1
    else:
        per_row = relation.row_width + HEAP_ROW_OVERHEAD
        pages = max(1, math.ceil(relation.live_rows * per_row / relation.block_size))
    return pages * relation.block_size


def check_dead_rows(relations: Sequence[Relation]) -> list[Finding]:
    """One finding per pgjobs table: its dead rows against its live ones."""
    findings = []
    for r in relations:
        if r.is_index:
            continue
        total = r.live_rows + r.dead_rows
        ratio = r.dead_rows / total if total else 0.0
        verdict = _level(ratio, DEAD_RATIO_WARN, DEAD_RATIO_FAIL)
        if r.dead_rows < DEAD_ROWS_MIN:
            verdict = "ok"
        vacuumed = f"last vacuumed {r.last_vacuum}" if r.last_vacuum else "never vacuumed"
        findings.append(
            Finding(
                f"dead rows {r.name}",
                verdict,
                round(ratio, 3),
                f"{r.dead_rows} dead, {r.live_rows} live rows; {vacuumed}",
                ""
                if verdict == "ok"
                else f"run VACUUM pgjobs.{r.name}; if it keeps coming back, find what holds back "
                "xmin (the xmin check) or why autovacuum does not run (the autovacuum check)",
            )
        )
    return findings


def check_bloat(relations: Sequence[Relation]) -> list[Finding]:
    """One finding per pgjobs table and index: its size against what its live rows need."""
    findings = []
    for r in relations:
        needed = needed_bytes(r)
        kind = "index" if r.is_index else "table"
        if needed is None:
            findings.append(
                Finding(
                    f"bloat {r.name}",
                    "ok",
                    None,
                    f"{kind} of {r.bytes} bytes; no estimate until ANALYZE pgjobs.{r.table_name}",
                )
            )
            continue
        ratio = r.bytes / needed
        verdict: Verdict = (
            "warn" if ratio >= BLOAT_RATIO_WARN and r.bytes >= BLOAT_BYTES_MIN else "ok"
        )
        fix = (
            f"run REINDEX INDEX CONCURRENTLY pgjobs.{r.name}"
            if r.is_index
            else f"running VACUUM pgjobs.{r.name} makes the space reusable; to return it, "
            "pg_repack, or VACUUM FULL (which locks the table)"
        )
        findings.append(
            Finding(
                f"bloat {r.name}",
                verdict,
                round(ratio, 2),
                f"{kind} of {r.bytes} bytes, about {needed} needed (estimate)",
                fix if verdict != "ok" else "",
            )
        )
    return findings


# -- the xmin horizon and idle transactions ----------------------------------------


@dataclasses.dataclass(frozen=True)
class XminHolder:
    """A session, prepared transaction or replication slot holding the xmin horizon back."""

    kind: str
    pid: int | None
    application: str | None
    seconds: float | None
    xid_age: int | None
    state: str | None
    query: str | None


def check_xmin(holders: Sequence[XminHolder], limits: Limits = Limits()) -> list[Finding]:
    """The holder that is worst by age, sessions by seconds, the others by xid age."""
    judged: list[tuple[Verdict, XminHolder]] = []
    for h in holders:
        if h.kind == "session":
            level = _level(h.seconds or 0.0, limits.xmin_warn_seconds, limits.xmin_fail_seconds)
        else:
            level = _level(float(h.xid_age or 0), XMIN_WARN_XIDS, XMIN_FAIL_XIDS)
            if h.kind == "prepared transaction" and h.seconds is not None:
                level = _worst(
                    [level, _level(h.seconds, limits.xmin_warn_seconds, limits.xmin_fail_seconds)]
                )
        judged.append((level, h))
    if not judged:
        return [Finding("xmin", "ok", None, "no transaction or slot holds back the xmin horizon")]
    verdict, h = max(
        judged, key=lambda vh: (EXIT_CODES[vh[0]], vh[1].seconds or 0, vh[1].xid_age or 0)
    )
    age = _seconds(h.seconds) if h.seconds is not None else f"{h.xid_age} xids"
    if h.kind == "session":
        detail = (
            f"pid {h.pid} ({h.application or 'no application name'}), {h.state}, "
            f"transaction open {age}, {h.xid_age} xids old; query: {h.query or ''}"
        )
        fix = (
            f"end that transaction in its application, or SELECT pg_terminate_backend({h.pid}); "
            "set idle_in_transaction_session_timeout to stop it happening again"
        )
    elif h.kind == "prepared transaction":
        detail = f"prepared transaction {h.application!r}, prepared {age} ago, {h.xid_age} xids"
        fix = f"end it: COMMIT PREPARED or ROLLBACK PREPARED {h.application!r}"
    else:
        detail = f"replication slot {h.application!r} ({h.state}), xmin {h.xid_age} xids old"
        fix = (
            f"reconnect the slot's consumer, or drop the slot: "
            f"SELECT pg_drop_replication_slot({h.application!r})"
        )
    return [
        Finding(
            "xmin",
            verdict,
            round(h.seconds, 1) if h.seconds is not None else h.xid_age,
            detail,
            fix if verdict != "ok" else "",
        )
    ]


@dataclasses.dataclass(frozen=True)
class IdleSession:
    """A session idle inside a transaction."""

    pid: int
    application: str | None
    seconds: float
    query: str | None


def check_idle(sessions: Sequence[IdleSession], limits: Limits = Limits()) -> Finding:
    """How many sessions sit idle in a transaction, judged by the longest idle."""
    if not sessions:
        return Finding("idle in transaction", "ok", 0, "no session is idle in a transaction")
    oldest = max(sessions, key=lambda s: s.seconds)
    verdict = _level(oldest.seconds, limits.idle_warn_seconds, limits.idle_fail_seconds)
    return Finding(
        "idle in transaction",
        verdict,
        len(sessions),
        f"{len(sessions)} session(s); the longest idle, {_seconds(oldest.seconds)}: pid "
        f"{oldest.pid} ({oldest.application or 'no application name'}), last query: "
        f"{oldest.query or ''}",
        ""
        if verdict == "ok"
        else f"commit or roll back in that application, or SELECT pg_terminate_backend("
        f"{oldest.pid}); idle_in_transaction_session_timeout ends such sessions",
    )


# -- the server ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Server:
    """Server-wide values from doctor_server.sql, and the port the client connected to."""

    notify_usage: float
    max_connections: int
    reserved_connections: int
    server_port: int
    client_port: int | None
    autovacuum: bool
    jobs_reloptions: Sequence[str] | None


def check_notify(server: Server) -> Finding:
    """The NOTIFY queue's fill: a listener that stops reading fills it, then NOTIFY fails."""
    verdict = _level(server.notify_usage, NOTIFY_WARN, NOTIFY_FAIL)
    return Finding(
        "notification queue",
        verdict,
        round(server.notify_usage, 4),
        f"{server.notify_usage:.1%} of the NOTIFY queue in use",
        ""
        if verdict == "ok"
        else "a session LISTENs without reading: find it in pg_stat_activity (a LISTEN in an "
        "open transaction, or a stuck client) and end it",
    )


def reloptions(options: Sequence[str] | None) -> dict[str, str]:
    """pg_class.reloptions ("name=value" strings) as a mapping."""
    return dict(o.split("=", 1) for o in options or ())


def check_autovacuum(server: Server) -> Finding:
    """pgjobs.jobs_live's autovacuum parameters against what the migrations set."""
    found = reloptions(server.jobs_reloptions)
    wrong = {k: v for k, v in JOBS_RELOPTIONS.items() if found.get(k) != v}
    wanted = ", ".join(f"{k} = {v}" for k, v in JOBS_RELOPTIONS.items())
    value = ", ".join(f"{k}={v}" for k, v in found.items()) or "defaults"
    if not server.autovacuum or found.get("autovacuum_enabled") == "false":
        where = "the server" if not server.autovacuum else "pgjobs.jobs_live"
        return Finding(
            "autovacuum",
            "fail",
            value,
            f"autovacuum is off for {where}: dead jobs pile up until someone runs VACUUM",
            "set autovacuum = on in postgresql.conf"
            if not server.autovacuum
            else "run ALTER TABLE pgjobs.jobs_live RESET (autovacuum_enabled)",
        )
    if wrong:
        return Finding(
            "autovacuum",
            "warn",
            value,
            "pgjobs.jobs_live's autovacuum parameters differ from the migrations' "
            + ", ".join(f"{k} = {v}" for k, v in JOBS_RELOPTIONS.items()),
            f"run ALTER TABLE pgjobs.jobs_live SET ({wanted})",
        )
    return Finding("autovacuum", "ok", value, "pgjobs.jobs_live has the migrations' parameters")


def check_connections(server: Server, by_application: Mapping[str, int]) -> Finding:
    """Connections in use against those open to ordinary users; pgjobs' own by name."""
    total = sum(by_application.values())
    limit = max(1, server.max_connections - server.reserved_connections)
    verdict = _level(total / limit, CONNECTIONS_WARN, CONNECTIONS_FAIL)
    ours = ", ".join(f"{n} {a}" for a, n in by_application.items() if a.startswith("pgjobs-"))
    return Finding(
        "connections",
        verdict,
        total,
        f"{total} of {limit} connections (max_connections {server.max_connections} less "
        f"{server.reserved_connections} reserved); pgjobs: {ours or 'none'}",
        ""
        if verdict == "ok"
        else "lower worker pool sizes or concurrency, put a session-pooling PgBouncer in front "
        "of the applications, or raise max_connections",
    )


# -- workers ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class WorkerRow:
    """A registered worker from doctor_workers.sql."""

    id: int
    host: str
    pid: int
    queues: Sequence[str]
    awaiting_work: bool
    silent_seconds: float
    listener_seen: bool


def check_listeners(
    server: Server, workers: Sequence[WorkerRow], limits: Limits = Limits()
) -> Finding:
    """Live workers that wait on LISTEN should each have their listener session here.

    A worker's listener shows as `pgjobs-listener pid=N` in pg_stat_activity
    when it is connected straight to PostgreSQL or through session pooling.
    Through a transaction-pooling PgBouncer its LISTEN lands on whichever
    server connection the pool lends it, and that name is normally missing:
    the worker then never hears a wake-up and claims only at its poll interval.
    """
    proxy = server.client_port is not None and server.client_port != server.server_port
    path = (
        f"doctor connects through something on port {server.client_port} (PostgreSQL listens "
        f"on {server.server_port}): a pooler or proxy"
        if proxy
        else "doctor connects to PostgreSQL directly"
    )
    waiting = [
        w for w in workers if w.awaiting_work and w.silent_seconds < limits.stale_worker_seconds
    ]
    deaf = [w for w in waiting if not w.listener_seen]
    if not deaf:
        return Finding(
            "listeners",
            "ok",
            len(waiting),
            f"{len(waiting)} waiting worker(s), each with its listener session; {path}",
        )
    names = ", ".join(f"{w.id} ({w.host} pid {w.pid})" for w in deaf)
    return Finding(
        "listeners",
        "warn",
        len(deaf),
        f"{len(deaf)} waiting worker(s) without a `{_names.APP_NAME_LISTENER} pid=N` session in "
        f"this database: {names}; {path}",
        "connect workers to PostgreSQL directly or through session pooling: a "
        "transaction-pooling PgBouncer drops LISTEN, so they only poll",
    )


@dataclasses.dataclass(frozen=True)
class RunningJob:
    """A running job, and how long its worker has been silent (None: no worker row)."""

    id: int
    queue: str
    worker_id: int | None
    silent_seconds: float | None


def check_orphans(jobs: Sequence[RunningJob], limits: Limits = Limits()) -> Finding:
    """Running jobs whose worker row is gone or silent past `limits.orphan_seconds`."""
    orphans = [
        j for j in jobs if j.silent_seconds is None or j.silent_seconds >= limits.orphan_seconds
    ]
    if not orphans:
        return Finding(
            "running on dead workers", "ok", 0, f"{len(jobs)} running job(s), all on live workers"
        )
    ids = ", ".join(str(j.id) for j in orphans[:10]) + (" …" if len(orphans) > 10 else "")
    return Finding(
        "running on dead workers",
        "warn",
        len(orphans),
        f"{len(orphans)} running job(s) whose worker is gone or silent for "
        f"{_seconds(limits.orphan_seconds)} or more: {ids}",
        "start a worker: its leader rescues them (queued again, or failed without attempts "
        "left); if workers run, look for rescuer errors in the leader's log",
    )


@dataclasses.dataclass(frozen=True)
class DueQueue:
    """A queue with jobs due now."""

    queue: str
    due: int
    oldest_seconds: float
    paused: bool


def check_queues(
    queues: Sequence[DueQueue], workers: Sequence[WorkerRow], limits: Limits = Limits()
) -> list[Finding]:
    """Each queue's oldest due job, and due jobs on a queue no live worker serves."""
    served = {
        q for w in workers if w.silent_seconds < limits.stale_worker_seconds for q in w.queues
    }
    if not queues:
        return [Finding("queues", "ok", 0, "no job is due")]
    findings = []
    for q in queues:
        check = f"queue {q.queue}"
        waited = f"{q.due} due job(s), the oldest due {_seconds(q.oldest_seconds)} ago"
        if q.paused:
            findings.append(Finding(check, "ok", round(q.oldest_seconds, 1), f"{waited}; paused"))
        elif q.queue not in served and "*" not in served:  # '*': `worker --queues '*'`
            findings.append(
                Finding(
                    check,
                    "fail",
                    round(q.oldest_seconds, 1),
                    f"{waited}, and no live worker serves this queue: they wait forever",
                    f"start a worker with --queues {q.queue} (or add it to a worker's queues)",
                )
            )
        else:
            verdict = _level(q.oldest_seconds, limits.due_warn_seconds, limits.due_fail_seconds)
            findings.append(
                Finding(
                    check,
                    verdict,
                    round(q.oldest_seconds, 1),
                    waited,
                    ""
                    if verdict == "ok"
                    else "the workers cannot keep up: add workers or concurrency for this queue, "
                    "or look for slow jobs with `python -m pgjobs jobs --status running`",
                )
            )
    return findings


@dataclasses.dataclass(frozen=True)
class Failures:
    """Failed jobs still kept, counted by when they failed."""

    last_hour: int
    hour_before: int
    last_day: int


def check_failures(failures: Failures) -> Finding:
    """Failed jobs of the last hour against the hour before and the day's hourly average."""
    average = failures.last_day / 24
    baseline = max(failures.hour_before, average)
    growing = failures.last_hour >= FAILED_MIN and failures.last_hour >= FAILED_GROWTH * baseline
    return Finding(
        "failed jobs",
        "warn" if growing else "ok",
        failures.last_hour,
        f"{failures.last_hour} failed in the last hour, {failures.hour_before} the hour before, "
        f"{average:.1f} an hour over the last day",
        "see what fails: `python -m pgjobs jobs --status failed`" if growing else "",
    )


def check_revision(found: _window.Schema | None) -> Finding:
    """The database's schema revision against this code's compatible window."""
    revision = found.revision if found else None
    try:
        _migrate.check_schema(found)
    except SchemaVersionError as exc:
        newer = revision is not None and revision > _migrate.SCHEMA_REVISION
        return Finding(
            "migrations",
            "fail",
            revision,
            f"schema at {revision}, outside the window of this code, revision "
            f"{_migrate.CODE.describe()}",
            "upgrade the pgjobs package on this host" if newer else str(exc),
        )
    if revision == _migrate.SCHEMA_REVISION:
        return Finding("migrations", "ok", revision, f"schema at {revision}, as this code needs")
    return Finding(
        "migrations",
        "ok",
        revision,
        f"schema at {revision}, inside the window of this code, revision "
        f"{_migrate.CODE.describe()}",
    )


# -- measuring -----------------------------------------------------------------------------


def _rows(conn: psycopg.Connection[Any], name: str) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_sql.psycopg(name), {})
        return cur.fetchall()


def _build(kind: type[_D], row: Mapping[str, Any]) -> _D:
    """A measurement dataclass from the query columns of the same names."""
    return kind(**{f.name: row[f.name] for f in dataclasses.fields(kind) if f.name in row})


@dataclasses.dataclass(frozen=True)
class History:
    """pgjobs.job_history as doctor_history.sql measures it."""

    partitions: int
    detaching: int
    bytes: int
    statuses_covered: int
    to_move: int
    unplaced: int


def check_history(history: History) -> Finding:
    """The history: a partition for now() per finished status, and no finished jobs left live."""
    size = f"{history.partitions} partitions, {history.bytes / 1_048_576:.1f} MB"
    if history.statuses_covered < 3:
        # A completion that finds none makes one (a worker's completer does),
        # so this slows the first batch; a bulk cancel from SQL fails until then.
        return Finding(
            "history",
            "warn",
            history.statuses_covered,
            f"{size}; only {history.statuses_covered} of the 3 finished statuses have a "
            "partition for now, so completions must make one",
            "run a worker (its leader makes partitions days ahead), or "
            "SELECT pgjobs.create_history_partitions()",
        )
    if history.unplaced:
        return Finding(
            "history",
            "warn",
            history.unplaced,
            f"{size}; {history.unplaced} finished jobs in pgjobs.jobs_live have no finished_at, "
            "so they cannot be placed in the history",
            "set one: UPDATE pgjobs.jobs SET finished_at = now() WHERE status IN "
            "('succeeded', 'failed', 'cancelled') AND finished_at IS NULL",
        )
    if history.to_move:
        return Finding(
            "history",
            "warn",
            history.to_move,
            f"{size}; {history.to_move} finished jobs are still in pgjobs.jobs_live",
            "the leader moves them within minutes; `python -m pgjobs migrate` moves them now",
        )
    return Finding("history", "ok", history.partitions, size)


def diagnose(conn: psycopg.Connection[Any], limits: Limits = Limits()) -> list[Finding]:
    """Measure the database on `conn` (autocommit) and judge every check.

    Raises:
        SchemaVersionError: the database has no pgjobs schema.
        psycopg.OperationalError: the connection was lost.
    """
    found = _migrate.current_schema(conn)
    if found is None:
        _migrate.check_schema(None)
    findings = [check_revision(found)]
    (row,) = _rows(conn, "doctor_server")
    server = Server(client_port=_client_port(conn), **row)
    relations = [_build(Relation, r) for r in _rows(conn, "doctor_relations")]
    workers = [_build(WorkerRow, r) for r in _rows(conn, "doctor_workers")]
    findings += check_xmin([_build(XminHolder, r) for r in _rows(conn, "doctor_xmin")], limits)
    findings.append(
        check_idle([_build(IdleSession, r) for r in _rows(conn, "doctor_idle")], limits)
    )
    findings += check_dead_rows(relations)
    findings += check_bloat(relations)
    findings.append(check_autovacuum(server))
    findings.append(check_notify(server))
    connections = {r["application"]: r["connections"] for r in _rows(conn, "doctor_connections")}
    findings.append(check_connections(server, connections))
    findings.append(check_listeners(server, workers, limits))
    if findings[0].verdict != "ok":
        return findings  # the jobs' tables are not where this code reads them
    findings.append(
        check_orphans([_build(RunningJob, r) for r in _rows(conn, "doctor_running")], limits)
    )
    queues = [_build(DueQueue, r) for r in _rows(conn, "doctor_queues")]
    findings += check_queues(queues, workers, limits)
    (failed,) = _rows(conn, "doctor_failed")
    findings.append(check_failures(_build(Failures, failed)))
    (history,) = _rows(conn, "doctor_history")
    findings.append(check_history(_build(History, history)))
    return findings


def _client_port(conn: psycopg.Connection[Any]) -> int | None:
    try:
        return int(conn.info.port)
    except (TypeError, ValueError):
        return None
