"""Benchmark adapters for the peers (procrastinate, pgqueuer, chancy); only `nox -s bench` has them.

Each adapter drives its peer through the peer's documented public API, with
settings a user would pick for throughput, and keeps the peer's defaults
otherwise. Each runs in its own scratch database. Written from the peers'
documentation; no code of theirs is copied.
"""

# The peers ship partial or no type information, and mypy never sees them
# installed: this module is checked loosely on purpose.
# mypy: disable-error-code="import-not-found,import-untyped,no-untyped-call"
# mypy: disable-error-code="misc,untyped-decorator,unused-ignore"

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

import psycopg

from pgjobs.bench._bench import WORKLOADS, Hook, JobHook, System

# Each peer is imported when its adapter is first used, so a peer that is
# missing or broken leaves the others measurable.

# -- procrastinate ----------------------------------------------------------------


def _procrastinate_app(connector: Any) -> Any:
    # A new App per connector, each with the task: App.with_connector is
    # deprecated, and its copies' tasks still point at the original App.
    import procrastinate

    app = procrastinate.App(connector=connector)

    @app.task(name="noop", queue="default")
    async def noop(i: int) -> None:
        Hook.on_job(i)

    return app


class ProcrastinateSystem(System):
    """procrastinate: PsycopgConnector, `defer`, `batch_defer`, `run_worker_async`."""

    name = "procrastinate"
    supports = frozenset(WORKLOADS) - {"backlog"}

    def _app(self) -> Any:
        import procrastinate

        return _procrastinate_app(procrastinate.PsycopgConnector(conninfo=self.dsn))

    def setup(self) -> None:
        async def apply() -> None:
            app = self._app()
            async with app.open_async():
                await app.schema_manager.apply_schema_async()

        asyncio.run(apply())

    def reset(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("TRUNCATE procrastinate_jobs RESTART IDENTITY CASCADE")

    def insert(self, start: int, count: int, *, finished: bool = False) -> None:
        app = self._sync_app()
        with app.open():
            task = app.configure_task("noop")
            for chunk in range(start, start + count, 5000):
                end = min(chunk + 5000, start + count)
                task.batch_defer(*({"i": i} for i in range(chunk, end)))

    def _sync_app(self) -> Any:
        import procrastinate

        return _procrastinate_app(procrastinate.SyncPsycopgConnector(conninfo=self.dsn))

    @contextlib.contextmanager
    def producer(self, *, wake: bool) -> Iterator[JobHook]:
        app = self._sync_app()
        with app.open():
            task = app.configure_task("noop")

            def enqueue(i: int) -> None:
                task.defer(i=i)

            yield enqueue

    def enqueue_bulk(self, conn: psycopg.Connection[Any], start: int, count: int) -> None:
        if getattr(self, "_bulk_app", None) is None:
            self._bulk_app = self._sync_app()
            self._bulk_app.open()
        jobs = [{"i": i} for i in range(start, start + count)]
        self._bulk_app.configure_task("noop").batch_defer(*jobs)

    def remaining(self, conn: psycopg.Connection[Any]) -> int:
        row = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
        ).fetchone()
        return int(row[0]) if row else 0

    async def work(self, concurrency: int, stop: asyncio.Event) -> None:
        app = self._app()
        async with app.open_async():
            run = asyncio.create_task(
                app.run_worker_async(
                    concurrency=concurrency,
                    install_signal_handlers=False,
                    wait=True,
                    fetch_job_polling_interval=1.0,
                )
            )
            await stop.wait()
            run.cancel()  # procrastinate's documented way to stop a worker it runs as a task
            with contextlib.suppress(asyncio.CancelledError):
                await run


# -- pgqueuer -----------------------------------------------------------------------


def _pgqueuer_sync(conn: psycopg.Connection[Any]) -> Any:
    from pgqueuer.adapters.drivers.psycopg import SyncPsycopgDriver
    from pgqueuer.adapters.persistence.queries import SyncQueries

    return SyncQueries(SyncPsycopgDriver(conn))


async def _pgqueuer_noop(job: Any) -> None:
    Hook.on_job(json.loads(job.payload)["i"])


class PgqueuerSystem(System):
    """pgqueuer: Queries.install, SyncQueries.enqueue (single and lists), QueueManager.run.

    pgqueuer deletes a job when it finishes (and logs it), so `remaining` is
    simply the rows left. Its concurrency is `max_concurrent_tasks`, which
    must be at least twice the dequeue `batch_size`: batch_size = C / 2.
    """

    name = "pgqueuer"
    supports = frozenset(WORKLOADS) - {"backlog"}

    def setup(self) -> None:
        import pgqueuer

        async def install() -> None:
            conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
            async with conn:
                await pgqueuer.Queries.from_psycopg_connection(conn).install()

        asyncio.run(install())

    def reset(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("TRUNCATE pgqueuer, pgqueuer_log")

    def insert(self, start: int, count: int, *, finished: bool = False) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            queries = _pgqueuer_sync(conn)
            for chunk in range(start, start + count, 5000):
                self._enqueue_many(queries, chunk, min(5000, start + count - chunk))

    @staticmethod
    def _enqueue_many(queries: Any, start: int, count: int) -> None:
        ids = range(start, start + count)
        queries.enqueue(["noop"] * count, [json.dumps({"i": i}).encode() for i in ids], [0] * count)

    @contextlib.contextmanager
    def producer(self, *, wake: bool) -> Iterator[JobHook]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            queries = _pgqueuer_sync(conn)

            def enqueue(i: int) -> None:
                queries.enqueue("noop", json.dumps({"i": i}).encode(), 0)

            yield enqueue

    def enqueue_bulk(self, conn: psycopg.Connection[Any], start: int, count: int) -> None:
        if getattr(self, "_bulk_conn", None) is None:
            self._bulk_conn = psycopg.connect(self.dsn, autocommit=True)
            self._bulk_queries = _pgqueuer_sync(self._bulk_conn)
        self._enqueue_many(self._bulk_queries, start, count)

    def remaining(self, conn: psycopg.Connection[Any]) -> int:
        row = conn.execute("SELECT count(*) FROM pgqueuer").fetchone()
        return int(row[0]) if row else 0

    async def work(self, concurrency: int, stop: asyncio.Event) -> None:
        import pgqueuer

        conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        async with conn:
            qm = pgqueuer.QueueManager(pgqueuer.Queries.from_psycopg_connection(conn))
            qm.entrypoint("noop")(_pgqueuer_noop)
            batch = max(1, concurrency // 2)
            run = asyncio.create_task(
                qm.run(batch_size=batch, max_concurrent_tasks=max(concurrency, 2 * batch))
            )
            await stop.wait()
            qm.shutdown.set()
            await run


# -- chancy -----------------------------------------------------------------------------


async def chancy_noop(*, i: int) -> None:
    """chancy's no-op job; chancy imports it by its dotted path in the worker."""
    Hook.on_job(i)


def _chancy_job(i: int) -> Any:
    import chancy

    return chancy.Job(func=f"{__name__}.chancy_noop", queue="default", kwargs={"i": i})


_CHANCY_ASYNC = "chancy.executors.asyncex.AsyncExecutor"


class ChancySystem(System):
    """chancy: migrate, declare a queue with the AsyncExecutor, sync_push, sync_push_many, Worker.

    chancy writes job outcomes from the worker every `send_outgoing_interval`
    (1 s by default); it is set to 10 ms here so the drain clock is not
    dominated by that flush.
    """

    name = "chancy"
    supports = frozenset(WORKLOADS) - {"backlog"}

    def _chancy(self) -> Any:
        import chancy

        # chancy logs every job it pulls at INFO; a worker printing one line
        # per job would measure the terminal, not chancy.
        quiet = logging.getLogger("pgjobs.bench.chancy")
        quiet.setLevel(logging.WARNING)
        return chancy.Chancy(self.dsn, no_default_plugins=True, log=quiet)

    def setup(self) -> None:
        async def migrate() -> None:
            async with self._chancy() as app:
                await app.migrate()

        asyncio.run(migrate())

    def reset(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("TRUNCATE chancy_jobs")

    def insert(self, start: int, count: int, *, finished: bool = False) -> None:
        with self._chancy() as app:
            for chunk in range(start, start + count, 5000):
                end = min(chunk + 5000, start + count)
                list(app.sync_push_many([_chancy_job(i) for i in range(chunk, end)]))

    @contextlib.contextmanager
    def producer(self, *, wake: bool) -> Iterator[JobHook]:
        with self._chancy() as app:

            def enqueue(i: int) -> None:
                app.sync_push(_chancy_job(i))

            yield enqueue

    def enqueue_bulk(self, conn: psycopg.Connection[Any], start: int, count: int) -> None:
        if getattr(self, "_bulk_app", None) is None:
            self._bulk_app = self._chancy()
            self._bulk_app.__enter__()
        jobs = [_chancy_job(i) for i in range(start, start + count)]
        list(self._bulk_app.sync_push_many(jobs))  # a generator: it writes as it is consumed

    def remaining(self, conn: psycopg.Connection[Any]) -> int:
        row = conn.execute(
            "SELECT count(*) FROM chancy_jobs WHERE state IN ('pending', 'running', 'retrying')"
        ).fetchone()
        return int(row[0]) if row else 0

    async def work(self, concurrency: int, stop: asyncio.Event) -> None:
        import chancy

        async with self._chancy() as app:
            await app.declare(
                chancy.Queue(
                    "default",
                    concurrency=concurrency,
                    executor=_CHANCY_ASYNC,
                    polling_interval=0.01,
                ),
                upsert=True,
            )
            async with chancy.Worker(app, register_signal_handlers=False) as worker:
                worker.send_outgoing_interval = 0.01
                await stop.wait()
                await worker.stop()


#: The adapters `python -m tests.bench` adds to pgjobs.bench's registry.
SYSTEMS = {
    "procrastinate": "tests.bench.peers:ProcrastinateSystem",
    "pgqueuer": "tests.bench.peers:PgqueuerSystem",
    "chancy": "tests.bench.peers:ChancySystem",
}
