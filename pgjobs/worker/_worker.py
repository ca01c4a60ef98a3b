"""Worker: one asyncio loop that claims, runs and records jobs, and stops without losing any."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from pgjobs import _dsn, _migrate, _schedule
from pgjobs._app import App
from pgjobs._log import get_logger
from pgjobs.errors import DatabaseUnavailableError
from pgjobs.worker._completer import Completer
from pgjobs.worker._config import WorkerConfig
from pgjobs.worker._db import CONNECTION_ERRORS, Outage, fetch
from pgjobs.worker._executor import Executor
from pgjobs.worker._fetcher import Fetcher, Slots
from pgjobs.worker._heartbeat import run_heartbeat
from pgjobs.worker._leader import Leader, leader_for
from pgjobs.worker._listener import Listener
from pgjobs.worker._outcome import ClaimedJob
from pgjobs.worker._scheduler import sync_schedules

EXIT_OK = 0
EXIT_FORCED = 1
#: One of the worker's loops (claims, outcomes, heartbeat, listener, leader)
#: failed with an error other than a lost connection, which each loop rides out.
EXIT_LOOP_FAILED = 3


class Worker:
    """Runs an App's tasks.

    `await worker.run()` returns when the worker has stopped: after
    `request_stop()` (or SIGTERM/SIGINT when `handle_signals`), every
    running job has finished or been given back to the queue and every
    outcome is written.

    Args:
        app: the App whose tasks this worker runs.
        config: the settings; keyword arguments override its fields.
    """

    def __init__(self, app: App, config: WorkerConfig | None = None, **overrides: Any) -> None:
        if config is None:
            config = WorkerConfig(**overrides)
        elif overrides:
            config = WorkerConfig(**{**_fields(config), **overrides})
        self.app = app
        self.config = config
        self.worker_id: int | None = None
        self.exit_code = EXIT_OK
        self.outage = Outage()
        self.running: dict[int, tuple[asyncio.Task[None], ClaimedJob]] = {}
        self.completed = 0
        self._stop_fetching = asyncio.Event()
        self._stop_all = asyncio.Event()
        self._force = asyncio.Event()
        self._wake = asyncio.Event()
        self._slots = Slots(config.concurrency)
        self._log = get_logger()
        self._pool: AsyncConnectionPool[Any] | None = None
        self._completer: Completer | None = None
        self._executor: Executor | None = None
        self._signals = 0

    # -- control -----------------------------------------------------------

    def request_stop(self, *, force: bool = False) -> None:
        """Begin a graceful stop; with `force`, give unfinished jobs back at once."""
        self._stop_fetching.set()
        self._wake.set()
        self._slots.freed.set()
        if force:
            self.exit_code = EXIT_FORCED
            self._force.set()

    def _on_signal(self, signum: int) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        if self._signals == 1:
            self._log.info(
                "worker.stopping",
                signal=name,
                running=len(self.running),
                grace_period=self.config.grace_period,
            )
            self.request_stop()
        else:
            self._log.warning("worker.stopping_now", signal=name, running=len(self.running))
            self.request_stop(force=True)

    # -- lifecycle ---------------------------------------------------------

    async def run(self, *, handle_signals: bool = False) -> int:
        """Run until stopped; returns the exit code (0 graceful, 1 forced, 3 a loop failed).

        Raises:
            DatabaseUnavailableError: PostgreSQL cannot be reached at start.
            SchemaVersionError: the schema is missing or of another version.
        """
        _schedule.check(self.app)  # a schedule of an unregistered task stops us here
        dsn = self.app.dsn
        await self._check_database(dsn)
        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._on_signal, sig)
        self._pool = AsyncConnectionPool(
            dsn, min_size=2, max_size=5, timeout=5, open=False, name="pgjobs-worker"
        )
        await self._pool.open(wait=True, timeout=10)
        try:
            await self._register()
            await sync_schedules(self._pool, self.app)
            return await self._run_loops(dsn)
        finally:
            if handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            await self._pool.close()

    async def _check_database(self, dsn: str) -> None:
        try:
            conn = await psycopg.AsyncConnection.connect(dsn, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailableError(_dsn.connect_error_message(dsn, exc)) from None
        async with conn:
            found = await _migrate.current_revision_async(conn)
        _migrate.check_revision(found)

    async def _register(self) -> None:
        assert self._pool is not None
        rows = await fetch(
            self._pool,
            "register_worker",
            {
                "id": self.worker_id,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "queues": list(self.config.queues),
                "concurrency": self.config.concurrency,
                "meta": json.dumps({"tasks": len(self.app.tasks), **self.config.host_tags}),
            },
        )
        self.worker_id = int(rows[0]["id"])

    async def _run_loops(self, dsn: str) -> int:
        assert self._pool is not None
        assert self.worker_id is not None
        config = self.config
        log = self._log.bind(worker_id=self.worker_id)
        self._executor = Executor(self.app.tasks, threads=config.concurrency)
        self._completer = Completer(
            self._pool,
            self.worker_id,
            self.outage,
            config.complete_batch,
            config.complete_interval,
        )
        fetcher = Fetcher(
            self._pool,
            self.worker_id,
            config.queues,
            self._slots,
            self._wake,
            self._stop_fetching,
            self.outage,
            self._dispatch,
            listen=config.listen,
            poll_interval=config.poll_interval,
        )
        background = [
            asyncio.create_task(self._completer.run(), name="pgjobs-completer"),
            asyncio.create_task(
                run_heartbeat(
                    self._pool,
                    self.worker_id,
                    config.heartbeat_interval,
                    self._stop_all,
                    self.outage,
                    self._register,
                    # Jobs this worker knows it holds; any other job the
                    # database says it runs is a claim whose reply was lost.
                    known=lambda: [*self.running, *self._completer_job_ids()],
                    orphan_age=config.stale_after,
                ),
                name="pgjobs-heartbeat",
            ),
        ]
        listener_task = None
        if config.listen:
            listener = Listener(dsn, config.queues, self._wake, self._stop_all, self.outage)
            listener_task = asyncio.create_task(listener.run(), name="pgjobs-listener")
            listener_task.add_done_callback(self._loop_ended)
            # Listen before the first claim, so no notification is missed.
            try:
                async with asyncio.timeout(10):
                    await listener.connected.wait()
            except TimeoutError:
                log.warning("worker.listener_not_ready", fallback="polling")
        log.info(
            "worker.started",
            queues=list(config.queues),
            concurrency=config.concurrency,
            tasks=sorted(self.app.tasks),
            listen=config.listen,
        )
        # The leader (cron, rescuer, pruner) steps down as soon as a stop
        # begins, so another worker takes over while this one drains.
        self.leader: Leader = leader_for(
            self._pool, config, dsn, self._stop_fetching, self.outage, self.worker_id
        )
        background.append(asyncio.create_task(self.leader.run(), name="pgjobs-leader"))
        fetch_task = asyncio.create_task(fetcher.run(), name="pgjobs-fetcher")
        for task in (*background, fetch_task):
            task.add_done_callback(self._loop_ended)
        await self._stop_fetching.wait()
        # Failures were logged, and turned into a stop, by _loop_ended.
        await asyncio.gather(fetch_task, return_exceptions=True)
        await self._drain(log, background[0])
        self._stop_all.set()
        if listener_task is not None:
            listener_task.cancel()  # it may be blocked in a long notifies() wait
            await asyncio.gather(listener_task, return_exceptions=True)
        await asyncio.gather(*background, return_exceptions=True)
        # Only now, with the heartbeat stopped: a beat after the row is gone
        # would take this worker for rescued and register it again.
        with contextlib.suppress(*CONNECTION_ERRORS):
            await fetch(self._pool, "unregister_worker", {"worker_id": self.worker_id})
        self._executor.shutdown()
        log.info(
            "worker.stopped",
            completed=self.completed,
            exit_code=self.exit_code,
            fenced=self._completer.fenced,
        )
        return self.exit_code

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        # Each loop rides out lost connections itself; anything else ends it.
        # A worker missing a loop must not stay up looking alive: without
        # claims it idles registered, without a heartbeat its jobs are
        # rescued while it runs them. It stops, letting the jobs it runs
        # finish, and exits non-zero.
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        self._log.error(
            "worker.loop_failed",
            loop=task.get_name(),
            error=f"{type(exc).__name__}: {exc}",
            hint="the worker stops; a supervisor should start it again",
        )
        self.exit_code = EXIT_LOOP_FAILED
        self.request_stop()

    def _completer_job_ids(self) -> list[int]:
        return self._completer.job_ids() if self._completer is not None else []

    def _dispatch(self, job: ClaimedJob) -> None:
        self._slots.take()
        task = asyncio.create_task(self._execute(job), name=f"pgjobs-job-{job.id}")
        self.running[job.id] = (task, job)

    async def _execute(self, job: ClaimedJob) -> None:
        assert self._executor is not None
        assert self._completer is not None
        try:
            outcome = await self._executor.run(job)
        except asyncio.CancelledError:
            return  # shutdown: the job stays in `running` and is released
        self._completer.add(outcome)
        self.completed += 1
        del self.running[job.id]
        self._slots.release()

    async def _drain(self, log: Any, completer_task: asyncio.Task[None]) -> None:
        """Let running jobs finish within the grace period, then give the rest back."""
        assert self._completer is not None
        assert self._pool is not None
        tasks = [task for task, _ in self.running.values()]
        if tasks and not self._force.is_set():
            everything = asyncio.ensure_future(asyncio.wait(tasks))
            force = asyncio.ensure_future(self._force.wait())
            await asyncio.wait(
                [everything, force],
                timeout=self.config.grace_period,
                return_when=asyncio.FIRST_COMPLETED,
            )
            everything.cancel()
            force.cancel()
        unfinished = {job_id: task for job_id, (task, _) in self.running.items() if not task.done()}
        for task in unfinished.values():
            task.cancel()
        if unfinished:
            # Async handlers see CancelledError now; a sync handler in a thread
            # cannot be interrupted and is abandoned (its job is released).
            await asyncio.wait(list(unfinished.values()), timeout=1.0)
        self._completer.close()
        await asyncio.gather(completer_task, return_exceptions=True)  # see _loop_ended
        if unfinished:
            try:
                await fetch(
                    self._pool, "release", {"ids": list(unfinished), "worker_id": self.worker_id}
                )
                log.info("worker.released", job_ids=sorted(unfinished)[:50], count=len(unfinished))
            except CONNECTION_ERRORS as exc:
                log.error(
                    "worker.release_failed",
                    error=str(exc),
                    count=len(unfinished),
                    note="the rescuer will return them once this worker's heartbeat is stale",
                )


def _fields(config: WorkerConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in config.__dataclass_fields__}
