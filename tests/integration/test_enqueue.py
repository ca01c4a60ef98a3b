"""Enqueue through every supported path: a rollback leaves no job, a commit makes exactly one."""

from __future__ import annotations

import asyncio
import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session, scoped_session, sessionmaker

import pgjobs
from pgjobs import _enqueue
from pgjobs._names import WAKE_CHANNEL
from pgjobs.errors import ArgumentsError, ConfigurationError, DuplicateJobError, UnknownTaskError

app = pgjobs.App()


@app.task(name="welcome", queue="emails", max_attempts=5)
def welcome(user_id: int) -> None:
    """A task to enqueue."""


def jobs(conn):
    return conn.execute(
        "SELECT task, args, queue, priority, max_attempts FROM pgjobs.jobs"
    ).fetchall()


@pytest.fixture(autouse=True)
def _app_dsn(dsn):
    app.dsn = dsn
    yield
    app.close()


def test_psycopg_rollback_leaves_nothing_commit_makes_one(dsn, conn):
    with psycopg.connect(dsn) as caller:
        welcome.options(conn=caller).enqueue(1)
        caller.rollback()
        assert jobs(conn) == []
        job_id = welcome.options(conn=caller).enqueue(2)
        assert jobs(conn) == []  # not visible before commit
        caller.commit()
    assert jobs(conn) == [("welcome", {"user_id": 2}, "emails", 2, 5)]
    assert isinstance(job_id, int)


def test_psycopg_async_connection(dsn, conn):
    async def main():
        async with await psycopg.AsyncConnection.connect(dsn) as caller:
            await welcome.options(conn=caller).enqueue_async(1)
            await caller.rollback()
            await welcome.options(conn=caller, priority=0).enqueue_async(3)
            await caller.commit()

    asyncio.run(main())
    assert jobs(conn) == [("welcome", {"user_id": 3}, "emails", 0, 5)]


def test_sqlalchemy_session_and_connection(dsn, conn):
    engine = sa.create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn))
    try:
        with Session(engine) as session:
            welcome.options(conn=session).enqueue(1)
            session.rollback()
            welcome.options(conn=session).enqueue(4)
            session.commit()
        with engine.begin() as connection:
            welcome.options(conn=connection).enqueue(5)
    finally:
        engine.dispose()
    assert sorted(row[1]["user_id"] for row in jobs(conn)) == [4, 5]


def test_sqlalchemy_async_session(dsn, conn):
    async def main():
        engine = create_async_engine(
            "postgresql+psycopg://", async_creator=lambda: psycopg.AsyncConnection.connect(dsn)
        )
        try:
            async with AsyncSession(engine) as session:
                await welcome.options(conn=session).enqueue_async(1)
                await session.rollback()
                await welcome.options(conn=session).enqueue_async(6)
                await session.commit()
        finally:
            await engine.dispose()

    asyncio.run(main())
    assert [row[1] for row in jobs(conn)] == [{"user_id": 6}]


def test_sqlalchemy_async_connection(dsn, conn):
    async def main():
        engine = create_async_engine(
            "postgresql+psycopg://", async_creator=lambda: psycopg.AsyncConnection.connect(dsn)
        )
        try:
            async with engine.connect() as connection:
                await welcome.options(conn=connection).enqueue_async(1)
                await connection.rollback()
                assert jobs(conn) == []
                await welcome.options(conn=connection).enqueue_async(7)
                assert jobs(conn) == []  # not visible before commit
                await connection.commit()
                assert [row[1] for row in jobs(conn)] == [{"user_id": 7}]
            async with engine.begin() as connection:  # commits as the block ends
                await welcome.options(conn=connection, priority=0).enqueue_async(8)
        finally:
            await engine.dispose()

    asyncio.run(main())
    assert [(row[1], row[3]) for row in jobs(conn)] == [({"user_id": 7}, 2), ({"user_id": 8}, 0)]


def test_sync_enqueue_on_async_connection_says_which_to_use(dsn):
    async def main():
        async with await psycopg.AsyncConnection.connect(dsn) as caller:
            with pytest.raises(ConfigurationError, match="use enqueue_async"):
                welcome.options(conn=caller).enqueue(1)

    asyncio.run(main())


def test_app_pool_and_bulk(conn):
    assert welcome.enqueue(1) is not None
    ids = app.enqueue_many([welcome.job(i) for i in range(1000)])
    assert len(ids) == 1000
    assert ids == sorted(ids)
    assert conn.execute("SELECT count(*) FROM pgjobs.jobs").fetchone()[0] == 1001


def _trace(pooled, fileno: int) -> None:
    """Have libpq record the protocol messages of `pooled` in the file `fileno`."""
    pooled.pgconn.trace(fileno)
    pooled.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)


def _assert_one_statement_sent(trace) -> None:
    """The client sent one Execute and no BEGIN or COMMIT (F: frontend messages)."""
    sent = [line for line in trace.read_text().splitlines() if line.startswith("F")]
    assert not any('"BEGIN"' in line or '"COMMIT"' in line for line in sent), sent
    assert sum("\tExecute\t" in line for line in sent) == 1, sent


@pytest.mark.parametrize("fingerprint", [None, "f-1"])
def test_an_enqueue_on_the_pool_is_one_statement_and_the_pool_stays_transactional(
    conn, tmp_path, fingerprint
):
    trace = tmp_path / "trace"
    with open(trace, "wb") as out:
        with app.connection() as pooled:  # the pool holds this one connection
            _trace(pooled, out.fileno())
        assert welcome.options(fingerprint=fingerprint).enqueue(1) is not None
        with app.connection() as pooled:
            pooled.pgconn.untrace()
            _assert_one_statement_sent(trace)
            # Whoever takes the connection next still gets a transaction.
            assert not pooled.autocommit
            pooled.execute("INSERT INTO pgjobs.jobs (task) VALUES ('rolled-back')")
            pooled.rollback()
    assert jobs(conn) == [("welcome", {"user_id": 1}, "emails", 2, 5)]


def test_an_async_enqueue_on_the_pool_is_one_statement_too(conn, tmp_path):
    trace = tmp_path / "trace"

    async def main(fileno: int) -> None:
        pool = await app._async_pool()
        async with pool.connection() as pooled:
            _trace(pooled, fileno)
        assert await welcome.enqueue_async(1) is not None
        async with pool.connection() as pooled:
            pooled.pgconn.untrace()
            assert not pooled.autocommit
        await app.aclose()

    with open(trace, "wb") as out:
        asyncio.run(main(out.fileno()))
    _assert_one_statement_sent(trace)
    assert jobs(conn) == [("welcome", {"user_id": 1}, "emails", 2, 5)]


def test_an_enqueue_on_the_pool_after_the_server_dropped_it_fails_clearly_then_works(conn):
    assert welcome.enqueue(1) is not None
    with app.connection() as pooled:  # the pool holds this one connection
        pid = pooled.info.backend_pid
    # pg_terminate_backend with a timeout returns once the backend is gone.
    assert conn.execute("SELECT pg_terminate_backend(%s, 5000)", [pid]).fetchone() == (True,)
    # The error is about the dead connection itself, not psycopg's complaint
    # that autocommit cannot be reset on it afterwards ("the connection is lost").
    with pytest.raises(psycopg.OperationalError) as raised:
        welcome.enqueue(2)
    assert "the connection is lost" not in str(raised.value)
    welcome.enqueue(2)  # the pool replaced the connection
    with app.connection() as pooled:
        assert not pooled.autocommit
    assert [row[1] for row in jobs(conn)] == [{"user_id": 1}, {"user_id": 2}]


def test_bulk_in_a_transaction_rolls_back(dsn, conn):
    with psycopg.connect(dsn) as caller:
        app.enqueue_many([welcome.job(i) for i in range(10)], conn=caller)
        caller.rollback()
    assert jobs(conn) == []


def test_fingerprint_modes(conn):
    first = welcome.options(fingerprint="user-1").enqueue(1)
    with pytest.raises(DuplicateJobError, match=f"id {first}"):
        welcome.options(fingerprint="user-1").enqueue(1)
    assert welcome.options(fingerprint="user-1", on_conflict="skip").enqueue(1) is None
    assert welcome.options(fingerprint="user-1", on_conflict="return").enqueue(1) == first
    # A finished job frees its fingerprint.
    conn.execute("UPDATE pgjobs.jobs SET status = 'succeeded', finished_at = now()")
    assert welcome.options(fingerprint="user-1").enqueue(1) not in (None, first)
    assert conn.execute("SELECT count(*) FROM pgjobs.jobs").fetchone()[0] == 2


def test_delay_and_run_at_use_the_database_clock(conn):
    welcome.options(delay=3600).enqueue(1)
    ahead = conn.execute("SELECT run_at - now() FROM pgjobs.jobs").fetchone()[0]
    assert 3590 < ahead.total_seconds() <= 3600


def test_bad_input_writes_nothing(conn):
    with pytest.raises(ArgumentsError):
        welcome.enqueue(object())  # type: ignore[arg-type]
    with pytest.raises(ArgumentsError, match="signature"):
        welcome.enqueue(1, 2)  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError, match="priority"):
        welcome.options(priority=9).enqueue(1)
    with pytest.raises(ConfigurationError, match="delay"):
        welcome.options(delay=-5).enqueue(1)
    with pytest.raises(UnknownTaskError, match="registered tasks: note, welcome"):
        app.enqueue("no.such.task", {})
    assert jobs(conn) == []


def test_enqueue_by_name_checks_the_signature(conn):
    app.enqueue("welcome", {"user_id": 9}, priority=1)
    with pytest.raises(ArgumentsError):
        app.enqueue("welcome", {"nobody": 9})
    assert jobs(conn) == [("welcome", {"user_id": 9}, "emails", 1, 5)]


def test_enqueue_by_name_on_a_psycopg_connection_is_in_its_transaction(dsn, conn):
    with psycopg.connect(dsn) as caller:
        app.enqueue("welcome", {"user_id": 1}, conn=caller)
        caller.rollback()
        assert jobs(conn) == []
        job_id = app.enqueue("welcome", {"user_id": 2}, conn=caller, priority=0)
        assert jobs(conn) == []  # not visible before commit
        caller.commit()
    assert jobs(conn) == [("welcome", {"user_id": 2}, "emails", 0, 5)]
    assert isinstance(job_id, int)

    async def main():
        async with await psycopg.AsyncConnection.connect(dsn) as caller:
            await app.enqueue_async("welcome", {"user_id": 3}, conn=caller)
            await caller.rollback()
            await app.enqueue_async("welcome", {"user_id": 4}, conn=caller, queue="q")
            assert len(jobs(conn)) == 1
            await caller.commit()

    asyncio.run(main())
    assert jobs(conn)[1:] == [("welcome", {"user_id": 4}, "q", 2, 5)]


def test_enqueue_by_name_on_sqlalchemy_is_in_its_transaction(dsn, conn):
    engine = sa.create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn))
    try:
        with Session(engine) as session:
            app.enqueue("welcome", {"user_id": 1}, conn=session)
            session.rollback()
            app.enqueue("welcome", {"user_id": 2}, conn=session)
            assert jobs(conn) == []
            session.commit()
        with engine.connect() as connection:
            app.enqueue("welcome", {"user_id": 3}, conn=connection)
            connection.rollback()
            app.enqueue("welcome", {"user_id": 4}, conn=connection)
            connection.commit()
        scoped = scoped_session(sessionmaker(engine))
        app.enqueue("welcome", {"user_id": 5}, conn=scoped)
        scoped.rollback()
        app.enqueue("welcome", {"user_id": 6}, conn=scoped)
        scoped.commit()
        scoped.remove()
    finally:
        engine.dispose()
    assert [row[1]["user_id"] for row in jobs(conn)] == [2, 4, 6]

    async def main():
        engine = create_async_engine(
            "postgresql+psycopg://", async_creator=lambda: psycopg.AsyncConnection.connect(dsn)
        )
        try:
            async with AsyncSession(engine) as session:
                await app.enqueue_async("welcome", {"user_id": 7}, conn=session)
                await session.rollback()
                await app.enqueue_async("welcome", {"user_id": 8}, conn=session)
                await session.commit()
        finally:
            await engine.dispose()

    asyncio.run(main())
    assert [row[1]["user_id"] for row in jobs(conn)] == [2, 4, 6, 8]


def test_plain_sql_enqueue_and_inspection(conn):
    job_id = conn.execute(
        "SELECT pgjobs.enqueue('welcome', '{\"user_id\": 42}'::jsonb, queue => 'emails')"
    ).fetchone()[0]
    assert job_id > 0
    assert conn.execute("SELECT status, count(*) FROM pgjobs.jobs GROUP BY 1").fetchall() == [
        ("queued", 1)
    ]
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("SELECT pgjobs.enqueue('welcome', '[1, 2]'::jsonb)")
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("SELECT pgjobs.enqueue('welcome', '{}'::jsonb, priority => 7)")


def test_notify_only_when_a_worker_awaits_work(dsn, conn):
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute(f"LISTEN {WAKE_CHANNEL}")
        welcome.enqueue(1)
        assert list(listener.notifies(timeout=0.3)) == []
        conn.execute(
            "INSERT INTO pgjobs.workers (host, pid, queues, concurrency, awaiting_work)"
            " VALUES ('h', 1, ARRAY['emails'], 1, true)"
        )
        app.enqueue_many([welcome.job(i) for i in range(50)])
        received = list(listener.notifies(timeout=0.5))
        assert [n.payload for n in received] == ["emails"]  # once per queue per transaction
        welcome.options(delay=60).enqueue(2)  # not due: nobody is woken
        assert list(listener.notifies(timeout=0.3)) == []


def _mixed_batch(tag: str) -> list[pgjobs.JobSpec]:
    """Jobs with every option a bulk enqueue must carry; `tag` picks the path."""
    at = dt.datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
    specs = [
        welcome.job(0),
        welcome.options(queue="other", priority=0).job(1),
        welcome.options(delay=90.5).job(2),
        welcome.options(run_at=at, max_attempts=9).job(3),
        welcome.options(meta={"trace": "t-1", "n": [1, 2]}).job(4),
        welcome.options(queue="other", delay=5).job(5),
    ]
    if tag == "insert":  # a fingerprint makes it take INSERT ... ON CONFLICT
        specs.append(welcome.options(fingerprint="only-on-insert").job(6))
    return specs


_ROWS = """
SELECT (args->>'user_id')::int, task, queue, priority, max_attempts, meta,
       CASE WHEN run_at > '2029-01-01' THEN run_at::text ELSE (run_at - created_at)::text END,
       status, attempts, errors
FROM pgjobs.jobs WHERE (args->>'user_id')::int < 6 ORDER BY 1
"""
# What _ROWS reads after the first six jobs of _mixed_batch are written.
_MIXED_ROWS = [
    (0, "welcome", "emails", 2, 5, {}, "00:00:00", "queued", 0, []),
    (1, "welcome", "other", 0, 5, {}, "00:00:00", "queued", 0, []),
    (2, "welcome", "emails", 2, 5, {}, "00:01:30.5", "queued", 0, []),
    (3, "welcome", "emails", 2, 9, {}, "2030-01-02 03:04:05.678901+00", "queued", 0, []),
    (4, "welcome", "emails", 2, 5, {"trace": "t-1", "n": [1, 2]}, "00:00:00", "queued", 0, []),
    (5, "welcome", "other", 2, 5, {}, "00:00:05", "queued", 0, []),
]


def _assert_mixed_rows_in_order(conn, ids, count: int) -> None:
    """`ids` are those of the first `count` jobs of _mixed_batch, in order, written as expected."""
    by_id = dict(conn.execute("SELECT id, (args->>'user_id')::int FROM pgjobs.jobs").fetchall())
    assert [by_id[i] for i in ids] == list(range(count))
    assert conn.execute(_ROWS).fetchall() == _MIXED_ROWS


def _written_on(dsn, connection, write, write_async):
    """`write(caller)` on a new connection of the kind named, committed; returns its result."""
    if connection == "psycopg":
        with psycopg.connect(dsn) as caller:
            return write(caller)
    if connection == "psycopg-async":

        async def main():
            async with await psycopg.AsyncConnection.connect(dsn) as caller:
                result = await write_async(caller)
                await caller.commit()
                return result

        return asyncio.run(main())
    assert connection == "sqlalchemy"
    engine = sa.create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn))
    with Session(engine) as session, session.begin():
        result = write(session)
    engine.dispose()
    return result


@pytest.mark.parametrize("path", ["copy", "insert", "copy-async", "sqlalchemy"])
def test_every_bulk_path_writes_the_same_rows_and_returns_ids_in_order(dsn, conn, path):
    # SQLAlchemy always takes the INSERT; psycopg takes COPY unless a job has a fingerprint.
    specs = _mixed_batch("insert" if path == "insert" else "copy")
    connection = {"copy": "psycopg", "insert": "psycopg", "copy-async": "psycopg-async"}
    ids = _written_on(
        dsn,
        connection.get(path, path),
        lambda caller: app.enqueue_many(specs, conn=caller),
        lambda caller: app.enqueue_many_async(specs, conn=caller),
    )
    _assert_mixed_rows_in_order(conn, ids, len(specs))


def test_bulk_copy_wakes_only_queues_with_a_job_due_now(dsn, conn):
    conn.execute(
        "INSERT INTO pgjobs.workers (host, pid, queues, concurrency, awaiting_work)"
        " VALUES ('h', 1, ARRAY['emails', 'other', 'later'], 1, true)"
    )
    past = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute(f"LISTEN {WAKE_CHANNEL}")
        with psycopg.connect(dsn) as caller:
            app.enqueue_many(
                [
                    welcome.options(delay=60).job(1),
                    welcome.options(delay=0).job(2),
                    welcome.options(queue="other", run_at=past).job(3),
                    welcome.options(queue="later", delay=30).job(4),
                    welcome.options(queue="later", run_at=past + dt.timedelta(days=9999)).job(5),
                ],
                conn=caller,
            )
            assert list(listener.notifies(timeout=0.2)) == []  # nothing before the commit
        received = sorted(n.payload for n in listener.notifies(timeout=0.5))
    assert received == ["emails", "other"]


@pytest.mark.parametrize("path", ["psycopg", "psycopg-async", "sqlalchemy", "sql-function"])
def test_every_single_path_writes_the_rows_the_sql_function_writes(dsn, conn, path):
    """enqueue.sql writes the row pgjobs.enqueue() writes, on every connection type."""
    specs = _mixed_batch("copy")  # the six jobs, without the fingerprinted seventh
    if path == "sql-function":
        ids = [
            conn.execute(
                "SELECT pgjobs.enqueue(%(task)s, %(args)s::jsonb, %(queue)s, %(priority)s,"
                " coalesce(%(run_at)s::timestamptz, now() + make_interval("
                "secs => coalesce(%(delay)s::float8, 0))), NULL, %(max_attempts)s,"
                " %(meta)s::jsonb)",
                _enqueue.single_query(spec)[1],
            ).fetchone()[0]
            for spec in specs
        ]
    else:

        async def write_async(caller):
            return [await _enqueue.enqueue_async(caller, spec) for spec in specs]

        ids = _written_on(
            dsn,
            path,
            lambda caller: [_enqueue.enqueue_sync(caller, spec) for spec in specs],
            write_async,
        )
    _assert_mixed_rows_in_order(conn, ids, len(specs))


def test_single_enqueue_wakes_at_commit_only_for_a_new_job_due_now(dsn, conn):
    conn.execute(
        "INSERT INTO pgjobs.workers (host, pid, queues, concurrency, awaiting_work)"
        " VALUES ('h', 1, ARRAY['emails', 'other'], 1, false)"
    )
    with psycopg.connect(dsn, autocommit=True) as listener, psycopg.connect(dsn) as caller:
        listener.execute(f"LISTEN {WAKE_CHANNEL}")

        def woken() -> list[str]:
            return [n.payload for n in listener.notifies(timeout=0.3)]

        welcome.options(conn=caller).enqueue(0)
        caller.commit()
        assert woken() == []  # a worker that is busy is not woken
        conn.execute("UPDATE pgjobs.workers SET awaiting_work = true")
        welcome.options(conn=caller).enqueue(1)  # enqueue.sql
        assert woken() == []  # not before the commit
        caller.commit()
        assert woken() == ["emails"]
        welcome.options(conn=caller, queue="nobody's").enqueue(1)
        caller.commit()
        assert woken() == []  # no waiting worker takes that queue
        welcome.options(conn=caller, fingerprint="f").enqueue(1)  # the SQL function
        caller.commit()
        assert woken() == ["emails"]
        welcome.options(conn=caller, fingerprint="f", on_conflict="skip").enqueue(2)
        welcome.options(conn=caller, queue="other", delay=60).enqueue(3)
        caller.commit()
        assert woken() == []  # a skipped duplicate and a job not yet due wake nobody
        welcome.options(conn=caller, queue="other").enqueue(4)
        caller.rollback()
        assert woken() == []


@pytest.mark.parametrize("autocommit", [True, False])
def test_bulk_copy_wakes_workers_only_once_the_rows_are_committed(dsn, conn, autocommit):
    """The wake-up is queued in a statement before the COPY: both must commit together."""
    conn.execute(
        "INSERT INTO pgjobs.workers (host, pid, queues, concurrency, awaiting_work)"
        " VALUES ('h', 1, ARRAY['emails'], 1, true)"
    )
    specs = [welcome.job(i) for i in range(20_000)]
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute(f"LISTEN {WAKE_CHANNEL}")
        with psycopg.connect(dsn, autocommit=autocommit) as caller:

            def enqueue() -> None:
                app.enqueue_many(specs, conn=caller)
                if not autocommit:
                    caller.commit()

            with ThreadPoolExecutor(1) as pool:
                writing = pool.submit(enqueue)
                (woken,) = list(listener.notifies(timeout=30, stop_after=1))
                # Counted the moment the notification arrives.
                (visible,) = conn.execute("SELECT count(*) FROM pgjobs.jobs").fetchone()
                writing.result()
    assert woken.payload == "emails"
    assert visible == len(specs)


def test_async_bulk_copy_on_an_autocommit_connection_wakes_after_the_rows(dsn, conn):
    """The async twin of the test above, on the case that needs the transaction."""
    conn.execute(
        "INSERT INTO pgjobs.workers (host, pid, queues, concurrency, awaiting_work)"
        " VALUES ('h', 1, ARRAY['emails'], 1, true)"
    )
    specs = [welcome.job(i) for i in range(20_000)]

    async def main() -> tuple[str, int]:
        connect = psycopg.AsyncConnection.connect
        async with (
            await connect(dsn, autocommit=True) as listener,
            await connect(dsn, autocommit=True) as caller,
            await connect(dsn, autocommit=True) as counter,
        ):
            await listener.execute(f"LISTEN {WAKE_CHANNEL}")
            writing = asyncio.create_task(app.enqueue_many_async(specs, conn=caller))
            async for woken in listener.notifies(timeout=30, stop_after=1):
                # Counted the moment the notification arrives.
                cur = await counter.execute("SELECT count(*) FROM pgjobs.jobs")
                (visible,) = await cur.fetchone()
                payload = woken.payload
            await writing
            return payload, visible

    assert asyncio.run(main()) == ("emails", len(specs))


@app.task(name="note")
def note(text: str) -> None:
    """A task whose argument is free text."""


_AWKWARD = ["back\\slash", "new\nline", "tab\there", "cr\rhere", '"quoted"', "\\.", "\\N", "é☃𝄞"]


@pytest.mark.parametrize("path", ["copy", "insert"])
def test_bulk_paths_keep_text_that_copy_would_read_as_markup(dsn, conn, path):
    """COPY text gives backslash, tab, newline and CR a meaning: they must arrive as sent."""
    queue = "q\\with\ttab"
    specs = [note.options(queue=queue, meta={"m": v}).job(v) for v in _AWKWARD]
    # A JobSpec made by hand may carry JSON with raw whitespace between tokens.
    specs.append(pgjobs.JobSpec("note", '{\n\t"text":\r "spaced"}', specs[0].options))
    if path == "insert":  # a fingerprint makes it take INSERT ... ON CONFLICT
        specs.append(note.options(fingerprint="f").job("fp"))
    with psycopg.connect(dsn) as caller:
        ids = app.enqueue_many(specs, conn=caller)
    rows = conn.execute(
        "SELECT id, task, args->>'text', queue, meta FROM pgjobs.jobs WHERE task = 'note'"
    ).fetchall()
    by_id = {row[0]: row[1:] for row in rows}
    expected = [("note", v, queue, {"m": v}) for v in _AWKWARD]
    expected.append(("note", "spaced", queue, {"m": _AWKWARD[0]}))
    assert [by_id[i] for i in ids[: len(expected)]] == expected


def test_a_bulk_copy_larger_than_one_chunk_keeps_every_job_in_order(dsn, conn):
    count = 4_321  # more than two of the COPY's chunks of rows
    with psycopg.connect(dsn) as caller:
        ids = app.enqueue_many([welcome.job(i) for i in range(count)], conn=caller)
    stored = dict(conn.execute("SELECT id, (args->>'user_id')::int FROM pgjobs.jobs").fetchall())
    assert len(stored) == count
    assert [stored[i] for i in ids] == list(range(count))
    # All due now, so the COPY left run_at to its default: the clock of the
    # enqueuing transaction, the same as created_at.
    clocks = conn.execute(
        "SELECT count(DISTINCT (run_at, created_at)), count(*) FILTER (WHERE run_at = created_at)"
        " FROM pgjobs.jobs"
    ).fetchone()
    assert clocks == (1, count)


@pytest.mark.parametrize("path", ["single", "copy", "insert"])
def test_a_run_at_with_seconds_in_its_offset_keeps_its_instant(dsn, conn, path):
    # Python allows seconds and microseconds in an offset; PostgreSQL's input does not.
    odd = dt.timezone(dt.timedelta(hours=5, minutes=30, seconds=15, microseconds=5))
    at = dt.datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=odd)
    with psycopg.connect(dsn) as caller:
        if path == "single":
            job_id = welcome.options(run_at=at, conn=caller).enqueue(1)
        else:
            fingerprint = "f" if path == "insert" else None
            job = welcome.options(run_at=at, fingerprint=fingerprint).job(1)
            [job_id] = app.enqueue_many([job], conn=caller)
    row = conn.execute("SELECT run_at FROM pgjobs.jobs WHERE id = %s", (job_id,)).fetchone()
    assert row is not None
    assert row[0] == at


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_bulk_enqueue_works_on_a_connection_in_pipeline_mode(dsn, conn, flavour):
    """COPY cannot run in pipeline mode: such a batch takes the INSERT."""
    specs = [welcome.job(i) for i in range(5)]
    if flavour == "sync":
        with psycopg.connect(dsn) as caller:
            with caller.pipeline():
                ids = app.enqueue_many(specs, conn=caller)
            caller.commit()
    else:

        async def main() -> list[int]:
            async with await psycopg.AsyncConnection.connect(dsn) as caller:
                async with caller.pipeline():
                    ids = await app.enqueue_many_async(specs, conn=caller)
                await caller.commit()
                return ids

        ids = asyncio.run(main())
    stored = dict(conn.execute("SELECT id, (args->>'user_id')::int FROM pgjobs.jobs").fetchall())
    assert [stored[i] for i in ids] == list(range(5))
