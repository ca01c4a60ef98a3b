"""Worker: one asyncio loop that claims, runs and records jobs, and stops without losing any."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from pgjobs import _connect, _dsn, _migrate, _schedule, _webhooks
from pgjobs._app import App
from pgjobs._log import get_logger
from pgjobs._task import Task
from pgjobs.errors import DatabaseUnavailableError
from pgjobs.worker._breakers import sync_breakers
from pgjobs.worker._completer import Completer
from pgjobs.worker._config import WorkerConfig
from pgjobs.worker._db import CONNECTION_ERRORS, Outage, fetch
from pgjobs.worker._dedicated import HotConnection
from pgjobs.worker._executor import Executor
from pgjobs.worker._fetcher import Fetcher, Slots
from pgjobs.worker._health import HealthServer, Readiness, listen
from pgjobs.worker._heartbeat import Heartbeat
from pgjobs.worker._leader import Leader, leader_for
from pgjobs.worker._listener import Listener
from pgjobs.worker._metrics import Metrics, MetricsServer
from pgjobs.worker._outcome import ClaimedJob
from pgjobs.worker._progress import Progress
from pgjobs.worker._queue_limits import sync_queue_limits
from pgjobs.worker._queues import EveryQueue
from pgjobs.worker._scheduler import sync_schedules
from pgjobs.worker._service import Service
from pgjobs.worker._transaction import Transactions
from pgjobs.worker._webhooks import check_client, delivery_task, sync_webhooks

#: The worker's pool: one connection, for every statement but the leader's,
#: LISTEN, and the claims and outcome batches of a busy worker: heartbeats,
#: the awaiting flag, progress, registering, a follower's look at the leader
#: lock, and an idle worker's claims and outcomes. All are short; the leader's
#: duties, which may not be (a VACUUM, a partition detach), run on the
#: leader's own connection. The claims and the outcomes each keep a
#: connection of their own while busy (HotConnection). So a worker holds
#: 1 connection idle and 3 busy, plus the listener's, plus the leader's while
#: it leads: at most 3 idle and 5 busy, at any concurrency. An App with
#: transactional tasks adds up to one per slot while they run
#: (pgjobs/worker/_transaction.py).
POOL_MIN = 1
POOL_MAX = 1
#: Seconds an extra connection stays unused before the pool closes it (the
#: pool has none beyond POOL_MIN while POOL_MAX is 1).
POOL_MAX_IDLE = 5.0

EXIT_OK = 0
EXIT_FORCED = 1
#: One of the worker's services (fetcher, completer, heartbeat, listener,
#: leader) failed with an error other than a lost connection, which every
#: service rides out.
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
        self._stop_requested = asyncio.Event()
        self._force = asyncio.Event()
        self._wake = asyncio.Event()
        self._slots = Slots(config.concurrency)
        self._log = get_logger()
        #: Prometheus metrics, with `metrics_port` set (raises ConfigurationError
        #: here, before anything runs, when prometheus-client is missing).
        self.metrics: Metrics | None = None
        if config.metrics_port is not None:
            slots = self._slots
            self.metrics = Metrics(running=lambda: slots.busy, free=lambda: slots.free)
        #: Serves `metrics` while running; its `port` is the one bound.
        self.metrics_server: MetricsServer | None = None
        #: The pool of the current (or last) run, made by `run`.
        self._pool: AsyncConnectionPool[Any] | None = None
        #: What exists only while running: set by `run`, gone when it returns.
        self._session: _Session | None = None
        #: The health probes' socket, bound by `run` before registering.
        self._health_socket: socket.socket | None = None
        self._signals = 0
        #: The queues its row lists: `config.queues`, or with '*' what the
        #: running session has found (set by the session).
        self.registered_queues: Callable[[], list[str]] = lambda: list(config.queues)

    @property
    def pooled(self) -> bool:
        """Whether the DSN may be a transaction pooler: `App(pooled=True)`, or a poll-only worker.

        Such a worker's connections send no session settings and never
        prepare a statement (see pgjobs/_connect.py); the leader's lock, on
        `leader_dsn`, is a direct connection either way.
        """
        return self.app.pooled or not self.config.listen

    # -- control -----------------------------------------------------------

    def request_stop(self, *, force: bool = False) -> None:
        """Begin a graceful stop; with `force`, give unfinished jobs back at once."""
        self._stop_requested.set()
        if self._session is not None:
            self._session.stop_claiming()
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
        """Run until stopped; returns the exit code (0 graceful, 1 forced, 3 a service failed).

        Raises:
            DatabaseUnavailableError: PostgreSQL cannot be reached at start.
            SchemaVersionError: the schema is missing, or outside this code's window.
            ConfigurationError: `health_port` is taken (before registering).
        """
        _schedule.check(self.app)  # a schedule of an unregistered task stops us here
        if self.config.webhooks:
            check_client(self.app)  # webhooks without httpx stop us here
        dsn = self.app.dsn
        await self._check_database(dsn)
        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._on_signal, sig)
        self._pool = _connect.async_pool(
            dsn,
            _connect.WORKER,
            min_size=POOL_MIN,
            max_size=POOL_MAX,
            max_idle=POOL_MAX_IDLE,
            timeout=5,
            name="pgjobs-worker",
            pooled=self.pooled,
        )
        await self._pool.open(wait=True, timeout=10)
        try:
            if self.config.health_port is not None:
                # A port that is taken stops the worker before it registers.
                self._health_socket = listen(self.config.health_host, self.config.health_port)
            self._serve_metrics()  # before registering: a port in use stops the worker here
            worker_id = await self._register(self._pool)
            await sync_schedules(self._pool, self.app)
            if self.config.webhooks:
                await sync_webhooks(self._pool, self.app)
            await sync_queue_limits(self._pool, self.app)
            await sync_breakers(self._pool, self.app)
            self._session = _Session(self, self._pool, worker_id, dsn)
            return await self._session.run()
        finally:
            self._session = None
            if self._health_socket is not None:
                self._health_socket.close()  # closed already unless the session never started
            if handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            await self._pool.close()
            if self.metrics_server is not None:
                await self.metrics_server.stop()
                self.metrics_server = None

    def _serve_metrics(self) -> None:
        """Serve `/metrics`, with `metrics_port` set.

        Raises:
            ConfigurationError: the port is in use, or the address cannot be bound.
        """
        if self.metrics is None or self.config.metrics_port is None:
            return
        server = MetricsServer(self.metrics, self.config.metrics_port, self.config.metrics_address)
        server.start()
        self.metrics_server = server
        self._log.info("worker.metrics_serving", address=server.address, port=server.port)

    async def _check_database(self, dsn: str) -> None:
        try:
            conn = await _connect.connect_async(dsn, _connect.WORKER, pooled=self.pooled)
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailableError(_dsn.connect_error_message(dsn, exc)) from None
        async with conn:
            found = await _migrate.current_schema_async(conn)
        _migrate.check_schema(found)

    async def _register(self, pool: AsyncConnectionPool[Any]) -> int:
        """Register (or, with `worker_id` set, register again); returns the worker id."""
        rows = await fetch(
            pool,
            "register_worker",
            {
                "id": self.worker_id,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "queues": self.registered_queues(),
                "concurrency": self.config.concurrency,
                "meta": json.dumps({"tasks": len(self.app.tasks), **self.config.host_tags}),
                "code_revision": _migrate.SCHEMA_REVISION,
                # Read at run time: pgjobs/__init__.py imports this module first.
                "version": getattr(sys.modules.get("pgjobs"), "__version__", None),
            },
        )
        self.worker_id = int(rows[0]["id"])
        return self.worker_id


class _WithDelivery(Mapping[str, Task[Any, Any]]):
    """An App's task registry with the webhook delivery task added, the registry itself kept.

    A copy into a dict would lose what a registry of its own does on a
    lookup (DjangoTasks imports Django tasks on demand, in `get`).
    """

    def __init__(self, tasks: Mapping[str, Task[Any, Any]], delivery: Task[Any, Any]) -> None:
        self.tasks = tasks
        self.delivery = delivery

    def get(self, name: str, default: Any = None) -> Any:
        found = self.tasks.get(name)
        if found is not None:
            return found
        return self.delivery if name == _webhooks.DELIVERY_TASK else default

    def __getitem__(self, name: str) -> Task[Any, Any]:
        found = self.get(name)
        if found is None:
            raise KeyError(name)
        return found  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[str]:
        yield from self.tasks
        if _webhooks.DELIVERY_TASK not in self.tasks:
            yield _webhooks.DELIVERY_TASK

    def __len__(self) -> int:
        return len(self.tasks) + (_webhooks.DELIVERY_TASK not in self.tasks)


class _Session:
    """One run of a Worker: its executor and services, and how they start and stop.

    Every service runs as a task named after it and ends the same way: a
    service that fails (with an error other than a lost connection, which it
    rides out itself) is logged as `worker.loop_failed` and stops the worker
    as a signal would, with exit code 3. A worker missing a service must not
    stay up looking alive: without claims it idles registered, without a
    heartbeat its jobs are rescued while it runs them.

    The order of a stop is the point. The fetcher and the leader stop first:
    no more claims, and another worker takes over the leader's duties while
    this one drains. Running jobs then get the grace period; the completer
    writes every outcome; only then do the heartbeat and the listener stop.
    """

    def __init__(
        self, worker: Worker, pool: AsyncConnectionPool[Any], worker_id: int, dsn: str
    ) -> None:
        config = worker.config
        self.worker = worker
        self.pool = pool
        self.worker_id = worker_id
        self.running = worker.running
        self.slots = worker._slots
        self.log = worker._log.bind(worker_id=worker_id)
        # Connections for transactional tasks' handlers, only when the App has
        # such a task: at most one per slot, none while none runs.
        self.transactions = (
            Transactions(dsn, worker_id=worker_id, size=config.concurrency, pooled=worker.pooled)
            if any(task.config.transactional for task in worker.app.tasks.values())
            else None
        )
        # Every worker runs webhook deliveries (a webhook added by SQL fires
        # for any App's jobs), unless the App registers the name itself.
        delivery = delivery_task(worker.app, pool)
        tasks: Mapping[str, Task[Any, Any]]
        if type(worker.app.tasks) is dict:
            tasks = {_webhooks.DELIVERY_TASK: delivery, **worker.app.tasks}
        else:  # a registry that finds tasks on demand (the Django worker's): keep it
            tasks = _WithDelivery(worker.app.tasks, delivery)
        self.executor = Executor(
            tasks,
            config.concurrency,
            worker_id=worker_id,
            metrics=worker.metrics,
            middleware=worker.app.middlewares,
            transactions=self.transactions,
        )
        # The claims and the outcome batches each keep a connection of their
        # own while busy (HotConnection): through the pool they cost the drain
        # 8%, and sharing one connection between them, 15%. Idle, they use
        # the pool's.
        self.loop = asyncio.get_running_loop()
        self.progress = Progress(pool, worker_id, self.loop, worker.outage)
        self.executor.recorder = self.progress
        self.completer = Completer(
            pool,
            worker_id,
            worker.outage,
            config.complete_batch,
            config.complete_interval,
            hot=HotConnection(dsn, pooled=worker.pooled, pool=pool),
            # Nothing runs and the last claim found no more work: no outcome
            # will join this one soon, so it is written at once, and then the
            # fetcher looks again (for the dependents it may have queued).
            idle=lambda: self.slots.busy == 0 and self.fetcher.awaiting,
            after_idle_write=worker._wake.set,
        )
        self.fetcher = Fetcher(
            pool,
            worker_id,
            () if config.every_queue else config.queues,
            self.slots,
            worker._wake,
            worker.outage,
            self.dispatch,
            listen=config.listen,
            poll_interval=config.poll_interval,
            hot=HotConnection(dsn, pooled=worker.pooled, pool=pool),
            ended=self.completer.job_ids,
        )
        # With --queues '*', the queues to claim from are found as they appear.
        self.every_queue = (
            EveryQueue(
                pool,
                worker_id,
                self._serve,
                worker._wake,
                interval=config.poll_interval,
                outage=worker.outage,
            )
            if config.every_queue
            else None
        )
        if self.every_queue is not None:
            worker.registered_queues = self.every_queue.registered
        self.heartbeat = Heartbeat(
            pool,
            worker_id,
            config.heartbeat_interval,
            worker.outage,
            lambda: worker._register(pool),
            # Jobs this worker knows it holds; any other job the database
            # says it runs is a claim whose reply was lost.
            known=lambda: [*self.running, *self.completer.job_ids()],
            orphan_age=config.stale_after,
            on_cancel=self.cancel,
        )
        self.listener = (
            Listener(
                dsn,
                config.queues,
                worker._wake,
                worker.outage,
                worker_id=worker_id,
                on_cancel=self.cancel,
            )
            if config.listen
            else None
        )
        self.leader: Leader = leader_for(pool, config, dsn, worker.outage, worker_id)
        self.tasks: dict[Service, asyncio.Task[None]] = {}
        sock = worker._health_socket
        self.health = (
            HealthServer(sock, self.tasks, Readiness(pool, self.listener, worker._stop_requested))
            if sock is not None
            else None
        )

    def _serve(self, queues: list[str]) -> None:
        """Claim from `queues` from now on (a '*' worker's queues, as found)."""
        self.fetcher.queues = list(queues)

    def start(self, service: Service) -> asyncio.Task[None]:
        """Run `service` as a task; its failure stops the worker."""
        task = asyncio.create_task(service.run(), name=f"pgjobs-{service.name}")
        task.add_done_callback(self._ended)
        self.tasks[service] = task
        return task

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        self.worker._log.error(
            "worker.loop_failed",
            loop=task.get_name(),
            error=f"{type(exc).__name__}: {exc}",
            hint="the worker stops; a supervisor should start it again",
        )
        self.worker.exit_code = EXIT_LOOP_FAILED
        self.worker.request_stop()

    def stop_claiming(self) -> None:
        """Stop the fetcher and the leader: the first step of every stop."""
        self.fetcher.stop()
        self.leader.stop()

    async def stop(self, *services: Service | None) -> None:
        """Stop `services` and wait for their tasks (a failure was reported by `_ended`)."""
        started = [service for service in services if service is not None]
        for service in started:
            service.stop()
        await asyncio.gather(*(self.tasks[service] for service in started), return_exceptions=True)

    async def run(self) -> int:
        """Start the services, wait for a stop, and stop them in order; returns the exit code."""
        worker, config, log = self.worker, self.worker.config, self.log
        if self.health is not None:
            self.start(self.health)
            log.info("worker.health_serving", host=config.health_host, port=self.health.port)
        self.start(self.completer)
        self.start(self.heartbeat)
        self.start(self.progress)
        if self.listener is not None:
            listening = self.start(self.listener)
            # Listen before the first claim, so no notification is missed.
            connected = asyncio.ensure_future(self.listener.connected.wait())
            await asyncio.wait(
                [connected, listening], timeout=10, return_when=asyncio.FIRST_COMPLETED
            )
            connected.cancel()
            if not self.listener.connected.is_set() and not listening.done():
                log.warning("worker.listener_not_ready", fallback="polling")
        log.info(
            "worker.started",
            queues=list(config.queues),
            concurrency=config.concurrency,
            tasks=sorted(worker.app.tasks),
            listen=config.listen,
        )
        if config.queues_note is not None:
            log.info(
                "worker.queues",
                queues=list(config.queues),
                chosen=config.queues_note,
                hint="--queues a,b serves those; --queues '*' serves every queue",
            )
        if self.transactions is not None:
            await self.transactions.open()
        if self.every_queue is not None:
            self.start(self.every_queue)
        self.start(self.leader)
        self.start(self.fetcher)
        if worker._stop_requested.is_set():
            self.stop_claiming()  # requested while starting
        await worker._stop_requested.wait()
        await self.stop(self.fetcher)  # stopped already, by request_stop
        await self._drain()  # stops the completer too, once every outcome is in
        if self.transactions is not None:
            await self.transactions.close()  # every job is done or given back
        await self.fetcher.hot.close()  # the fetcher and the completer are done with them
        await self.completer.hot.close()
        await self.stop(self.heartbeat, self.listener, self.progress, self.every_queue)
        await self.stop(self.leader)  # stopped already, with the fetcher
        # Only now, with the heartbeat stopped: a beat after the row is gone
        # would take this worker for rescued and register it again.
        with contextlib.suppress(*CONNECTION_ERRORS):
            await fetch(self.pool, "unregister_worker", {"worker_id": self.worker_id})
        self.executor.shutdown()
        await self.stop(self.health)  # last: /livez answers until the end
        log.info(
            "worker.stopped",
            completed=worker.completed,
            exit_code=worker.exit_code,
            fenced=self.completer.fenced
            + (self.transactions.fenced if self.transactions is not None else 0),
        )
        return worker.exit_code

    def dispatch(self, job: ClaimedJob) -> None:
        """Run a claimed job in a task of its own (the fetcher's callback)."""
        self.slots.take()
        # The loop's own create_task: asyncio.create_task() looks the running
        # loop up first, which on Python 3.11 is a getpid() system call per
        # job (about 6% of the worker's CPU in a no-op drain).
        task = self.loop.create_task(self._execute(job), name=f"pgjobs-job-{job.id}")
        self.running[job.id] = (task, job)

    def cancel(self, job_id: int) -> None:
        """Stop a job this worker runs, asked by pgjobs.cancel() (listener or heartbeat).

        A sync handler sees `current_job().cancelled` turn true; an async one
        is also cancelled through asyncio. Its run then ends `cancelled`.
        """
        if not self.executor.cancel(job_id):
            return  # not running here, or asked already
        self.log.info("job.cancel_requested", job_id=job_id)
        entry = self.running.get(job_id)
        if entry is not None and self.executor.is_async(job_id):
            entry[0].cancel("pgjobs.cancel() of this job")

    async def _execute(self, job: ClaimedJob) -> None:
        try:
            outcome = await self.executor.run(job)
        except asyncio.CancelledError:
            return  # shutdown: the job stays in `running` and is released
        self.worker.completed += 1
        del self.running[job.id]
        self.slots.release()
        # After the release (nothing awaits in between): the completer sees
        # whether any job of this worker still runs.
        if not outcome.written:  # a transactional job's success is committed already
            self.completer.add(outcome)

    async def _drain(self) -> None:
        """Let running jobs finish within the grace period, then give the rest back."""
        worker = self.worker
        tasks = [task for task, _ in self.running.values()]
        if tasks and not worker._force.is_set():
            everything = asyncio.ensure_future(asyncio.wait(tasks))
            force = asyncio.ensure_future(worker._force.wait())
            await asyncio.wait(
                [everything, force],
                timeout=worker.config.grace_period,
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
        await self.stop(self.completer)
        if unfinished:
            try:
                await fetch(
                    self.pool, "release", {"ids": list(unfinished), "worker_id": self.worker_id}
                )
                self.log.info(
                    "worker.released", job_ids=sorted(unfinished)[:50], count=len(unfinished)
                )
            except CONNECTION_ERRORS as exc:
                self.log.error(
                    "worker.release_failed",
                    error=str(exc),
                    count=len(unfinished),
                    note="the rescuer will return them once this worker's heartbeat is stale",
                )


def _fields(config: WorkerConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in config.__dataclass_fields__}
