"""`python -m pgjobs bench`: pgjobs against the raw-SQL ceiling (and the peers) in one run."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import multiprocessing
import os
import platform
import resource
import secrets
import statistics
import sys
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgjobs import _dsn, _log, _migrate
from pgjobs._app import App
from pgjobs.bench import _soak

if TYPE_CHECKING:
    from pgjobs.worker import WorkerConfig

# -- workloads and systems ----------------------------------------------------

WORKLOADS = ("enqueue-single", "enqueue-bulk", "drain", "latency", "backlog", "long-transaction")
DEFAULT_WORKLOADS = ("enqueue-single", "enqueue-bulk", "drain", "latency")
#: Workloads that run only when named: `-w all` is WORKLOADS, and leaves out
#: the soak, which runs for minutes to hours.
LONG_WORKLOADS = ("soak",)

#: name -> "module:Class" of each adapter, imported when used (worker
#: processes are spawned and import it again by the same path). The peers'
#: adapters (procrastinate, pgqueuer, chancy) do not ship with pgjobs: the
#: `nox -s bench` session adds them to this registry from tests/bench/peers.py.
SYSTEMS = {
    "pgjobs": "pgjobs.bench._bench:PgjobsSystem",
    "pgjobs-pool": "pgjobs.bench._bench:PgjobsPoolSystem",
    "raw": "pgjobs.bench._bench:RawSystem",
}
PEERS = ("procrastinate", "pgqueuer", "chancy")

JobHook = Callable[[int], None]


def _ignore(i: int) -> None:
    """The default job hook; a benchmark child replaces it."""


class Hook:
    """Where the no-op handlers of every system report the job they ran (one per process)."""

    on_job: JobHook = _ignore


class System:
    """One queue under test. Subclasses implement each step for their own tables and API.

    The parent process calls the setup and producer methods; `work` runs in a
    child process (see `_child_main`) and must return soon after `stop` is set.
    Every job's payload is `{"i": i}` and its handler calls `Hook.on_job(i)`.
    """

    name = ""
    #: Workloads this system can run.
    supports: frozenset[str] = frozenset(DEFAULT_WORKLOADS)
    #: The schema of the system's tables, whose statistics the soak reports.
    schema = "public"

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def setup(self) -> None:
        """Create the schema in a fresh, empty database."""
        raise NotImplementedError

    def reset(self) -> None:
        """Empty the queue tables."""
        raise NotImplementedError

    def insert(self, start: int, count: int, *, finished: bool = False) -> None:
        """Put jobs start..start+count-1 in the queue the fastest way (not timed)."""
        raise NotImplementedError

    def producer(self, *, wake: bool) -> AbstractContextManager[JobHook]:
        """A function that enqueues job i in its own transaction, through the public API.

        Args:
            wake: an idle worker waits and must be woken (systems that wake
                conditionally ignore it).
        """
        raise NotImplementedError

    def enqueue_bulk(self, conn: psycopg.Connection[Any], start: int, count: int) -> None:
        """Enqueue jobs start..start+count-1 with one bulk API call, in `conn`'s transaction."""
        raise NotImplementedError

    def enqueue_soak(self, conn: psycopg.Connection[Any], start: int, count: int) -> None:
        """Enqueue jobs start..start+count-1 of the 1 ms handler, in `conn`'s transaction (soak)."""
        raise NotImplementedError

    def remaining(self, conn: psycopg.Connection[Any]) -> int:
        """Jobs not yet recorded as done."""
        raise NotImplementedError

    async def work(self, concurrency: int, stop: asyncio.Event) -> None:
        """Run a worker with `concurrency` slots until `stop` is set (in a child process)."""
        raise NotImplementedError


def load_system(name: str, dsn: str) -> System:
    """The adapter for system `name` (registered, or a "module:Class" path) on database `dsn`."""
    module_name, _, class_name = SYSTEMS.get(name, name).partition(":")
    cls: type[System] = getattr(importlib.import_module(module_name), class_name)
    return cls(dsn)


# -- pgjobs -------------------------------------------------------------------

bench_app = App(strict=False)


@bench_app.task(name="pgjobs.bench.noop", keep_result=False)
async def noop(i: int) -> None:
    """The benchmark's no-op handler."""
    Hook.on_job(i)


@bench_app.task(name="pgjobs.bench.sleep_1ms", keep_result=False)
async def sleep_1ms(i: int) -> None:
    """The soak's handler: reports its start, then sleeps 1 ms."""
    Hook.on_job(i)
    await asyncio.sleep(0.001)


class PgjobsSystem(System):
    """pgjobs itself, through its public API: typed enqueue, enqueue_many, Worker."""

    name = "pgjobs"
    supports = frozenset(WORKLOADS + LONG_WORKLOADS)
    schema = "pgjobs"

    def setup(self) -> None:
        _migrate.upgrade(self.dsn)

    def reset(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(
                "TRUNCATE pgjobs.jobs_live, pgjobs.job_history, pgjobs.workers RESTART IDENTITY"
            )

    def insert(self, start: int, count: int, *, finished: bool = False) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            if finished:
                conn.execute(
                    "INSERT INTO pgjobs.job_history (task, args, status, attempts, started_at,"
                    " finished_at) SELECT %s, jsonb_build_object('i', g), 'succeeded', 1, now(),"
                    " now() FROM generate_series(%s::bigint, %s::bigint) AS g",
                    (noop.name, start, start + count - 1),
                )
            else:
                conn.execute(
                    "INSERT INTO pgjobs.jobs_live (task, args)"
                    " SELECT %s, jsonb_build_object('i', g)"
                    " FROM generate_series(%s::bigint, %s::bigint) AS g",
                    (noop.name, start, start + count - 1),
                )

    @contextlib.contextmanager
    def producer(self, *, wake: bool) -> Iterator[JobHook]:
        with psycopg.connect(self.dsn) as conn:
            call = noop.options(conn=conn)

            def enqueue(i: int) -> None:
                call.enqueue(i=i)
                conn.commit()

            yield enqueue

    def enqueue_bulk(self, conn: psycopg.Connection[Any], start: int, count: int) -> None:
        bench_app.enqueue_many([noop.job(i=i) for i in range(start, start + count)], conn=conn)

    def enqueue_soak(self, conn: psycopg.Connection[Any], start: int, count: int) -> None:
        jobs = [sleep_1ms.job(i=i) for i in range(start, start + count)]
        bench_app.enqueue_many(jobs, conn=conn)

    def remaining(self, conn: psycopg.Connection[Any]) -> int:
        row = conn.execute(
            "SELECT count(*) FROM pgjobs.jobs_live WHERE status IN ('queued', 'running')"
        ).fetchone()
        return int(row[0]) if row else 0

    def worker_config(self, concurrency: int) -> WorkerConfig:
        """The worker's settings for a drain; a variant of this system changes some."""
        from pgjobs.worker import WorkerConfig

        return WorkerConfig(queues=("default",), concurrency=concurrency)

    async def work(self, concurrency: int, stop: asyncio.Event) -> None:
        from pgjobs.worker import Worker

        bench_app.dsn = self.dsn
        worker = Worker(bench_app, self.worker_config(concurrency))
        run = asyncio.create_task(worker.run())
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait([run, waiter], return_when=asyncio.FIRST_COMPLETED)
        worker.request_stop()
        waiter.cancel()
        await run


class PgjobsPoolSystem(PgjobsSystem):
    """pgjobs' own one-transaction call: `task.enqueue()` on the App's pool.

    `enqueue-single` only. The `pgjobs` system enqueues in a transaction on
    the caller's connection, as raw SQL does: `BEGIN`, the statement and
    `COMMIT`. This one is the call without a connection, one statement in
    autocommit, as a peer that enqueues on an autocommit connection does.
    """

    name = "pgjobs-pool"
    supports = frozenset({"enqueue-single"})

    @contextlib.contextmanager
    def producer(self, *, wake: bool) -> Iterator[JobHook]:
        app = App(self.dsn, strict=False)
        task = app.task(name=noop.name, keep_result=False)(noop.fn)
        try:
            with app.connection():  # open the pool now, not in the first timed turn
                pass

            def enqueue(i: int) -> None:
                task.enqueue(i=i)

            yield enqueue
        finally:
            app.close()


# -- the raw-SQL reference ------------------------------------------------------

_RAW_SCHEMA = """
CREATE TABLE raw_jobs (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    status smallint NOT NULL DEFAULT 0,  -- 0 queued, 1 running, 2 done
    args   jsonb    NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.02,
        autovacuum_vacuum_cost_delay = 0);
CREATE INDEX raw_jobs_queued ON raw_jobs (id) WHERE status = 0;
"""
# The same claim semantics as pgjobs: a batch locked with SKIP LOCKED behind an
# optimisation fence, then marked running; completion is one batch UPDATE.
_RAW_CLAIM = """
UPDATE raw_jobs SET status = 1
WHERE id = ANY (ARRAY(
    SELECT id FROM raw_jobs WHERE status = 0 ORDER BY id LIMIT %s FOR NO KEY UPDATE SKIP LOCKED
))
RETURNING id, args
"""
_RAW_COMPLETE = "UPDATE raw_jobs SET status = 2 WHERE id = ANY (%s)"


class RawSystem(System):
    """A minimal hand-written queue on a bare table: the ceiling of this PostgreSQL.

    The worker loop claims up to `concurrency` jobs in one statement, runs
    their handlers concurrently, then completes them in one statement; when
    idle it waits on LISTEN. Statements are prepared. No retries, no fencing,
    no heartbeats: nothing a real queue could skip.
    """

    name = "raw"
    supports = frozenset(WORKLOADS)

    def setup(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(_RAW_SCHEMA)

    def reset(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("TRUNCATE raw_jobs RESTART IDENTITY")

    def insert(self, start: int, count: int, *, finished: bool = False) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO raw_jobs (status, args) SELECT %s, jsonb_build_object('i', g)"
                " FROM generate_series(%s::bigint, %s::bigint) AS g",
                (2 if finished else 0, start, start + count - 1),
            )

    @contextlib.contextmanager
    def producer(self, *, wake: bool) -> Iterator[JobHook]:
        insert = "INSERT INTO raw_jobs (args) VALUES (%s::jsonb)"
        with psycopg.connect(self.dsn) as conn:

            def enqueue(i: int) -> None:
                conn.execute(insert, (json.dumps({"i": i}),), prepare=True)
                if wake:
                    conn.execute("NOTIFY raw_jobs")
                conn.commit()

            yield enqueue

    def enqueue_bulk(self, conn: psycopg.Connection[Any], start: int, count: int) -> None:
        # COPY, the fastest way into a table: JSON lines need no COPY escaping.
        rows = "".join(f"{json.dumps({'i': i})}\n" for i in range(start, start + count))
        with conn.cursor() as cur, cur.copy("COPY raw_jobs (args) FROM STDIN") as copy:
            copy.write(rows)

    def remaining(self, conn: psycopg.Connection[Any]) -> int:
        row = conn.execute("SELECT count(*) FROM raw_jobs WHERE status < 2").fetchone()
        return int(row[0]) if row else 0

    async def work(self, concurrency: int, stop: asyncio.Event) -> None:
        connect = psycopg.AsyncConnection.connect
        async with (
            await connect(self.dsn, autocommit=True) as conn,
            await connect(self.dsn, autocommit=True) as listener,
        ):
            await listener.execute("LISTEN raw_jobs")

            async def handle(args: dict[str, Any]) -> None:
                Hook.on_job(args["i"])

            while not stop.is_set():
                cur = await conn.execute(_RAW_CLAIM, (concurrency,), prepare=True)
                rows = await cur.fetchall()
                if rows:
                    await asyncio.gather(*(handle(args) for _, args in rows))
                    await conn.execute(_RAW_COMPLETE, ([r[0] for r in rows],), prepare=True)
                    continue
                # Idle: a notification (also one that arrived since the claim)
                # or the poll tick, which also bounds how late `stop` is seen.
                async for _ in listener.notifies(timeout=0.1, stop_after=1):
                    pass


# -- worker processes -----------------------------------------------------------


def _child_main(
    system_name: str,
    dsn: str,
    concurrency: int,
    pipe: Connection,
    counter: Any,
    job_cpu_us: int = 0,
) -> None:
    """A benchmark worker process: run `system`'s worker until the parent says stop.

    With `job_cpu_us`, every handler then keeps the CPU busy that long (in
    the handler's own thread, holding the GIL), as a handler that computes
    something does: what several processes are for.
    """
    _log.configure("warning")
    ids: array[int] = array("q")
    starts: array[float] = array("d")
    spin = job_cpu_us / 1e6

    def on_job(i: int) -> None:
        starts.append(time.time())
        ids.append(i)
        counter.value += 1
        if spin:
            until = time.thread_time() + spin
            while time.thread_time() < until:
                pass

    Hook.on_job = on_job
    error = None
    try:
        system = load_system(system_name, dsn)
        asyncio.run(_child_run(system, concurrency, pipe))
    except BaseException as exc:  # reported to the parent, which fails the workload
        error = f"{type(exc).__name__}: {exc}"
    pipe.send(
        {
            "ids": ids.tobytes(),
            "starts": starts.tobytes(),
            "rss_mb": _peak_rss_mb(),
            "error": error,
        }
    )
    pipe.close()


def _peak_rss_mb() -> float:
    # VmHWM is this process image's own peak. ru_maxrss would also count the
    # parent's pages, which Linux carries over a fork and an exec.
    with contextlib.suppress(OSError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _child_run(system: System, concurrency: int, pipe: Connection) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_message() -> None:
        with contextlib.suppress(EOFError):
            pipe.recv()
        stop.set()
        loop.remove_reader(pipe.fileno())

    loop.add_reader(pipe.fileno(), on_message)
    pipe.send("ready")
    await system.work(concurrency, stop)


@dataclass
class WorkerRun:
    """What the worker processes of one run reported."""

    ids: list[int] = field(default_factory=list)
    starts: dict[int, float] = field(default_factory=dict)
    first_start: float = 0.0
    rss_mb: float = 0.0
    #: The machine's cores kept busy while the jobs ran (PostgreSQL's too, and
    #: anything else on it), averaged; None where /proc/stat cannot tell.
    busy_cores: float | None = None


def _busy_seconds() -> float | None:
    """CPU time the whole machine has spent busy so far (not idle, not waiting on I/O)."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            ticks = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


class Workers:
    """P worker processes of one system, started and stopped together."""

    def __init__(
        self, system: str, dsn: str, concurrency: int, processes: int, job_cpu_us: int = 0
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.counters = [ctx.RawValue("q", 0) for _ in range(processes)]
        self.pipes: list[Connection] = []
        self.procs: list[Any] = []
        for counter in self.counters:
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_child_main,
                args=(system, dsn, concurrency, child, counter, job_cpu_us),
                daemon=True,
                name=f"pgjobs-bench-{system}",
            )
            proc.start()
            child.close()
            self.pipes.append(parent)
            self.procs.append(proc)
        for pipe in self.pipes:
            if not pipe.poll(120):
                self.kill()
                raise RuntimeError(f"a {system} worker process did not start")
            message = pipe.recv()
            if message != "ready":
                self.kill()
                raise RuntimeError(f"a {system} worker process failed: {message.get('error')}")

    def handled(self) -> int:
        """Jobs whose handler has run, over every process."""
        return sum(int(c.value) for c in self.counters)

    def stop(self, timeout: float = 60.0) -> WorkerRun:
        """Ask every process to stop and collect what they ran."""
        run = WorkerRun()
        firsts = []
        for ids, starts, rss_mb in self.stop_arrays(timeout):
            run.ids.extend(ids)
            run.starts.update(zip(ids, starts, strict=True))
            if starts:
                firsts.append(min(starts))
            run.rss_mb = max(run.rss_mb, rss_mb)
        run.first_start = min(firsts) if firsts else 0.0
        return run

    def stop_arrays(self, timeout: float = 60.0) -> list[tuple[array[int], array[float], float]]:
        """Ask every process to stop; each one's job ids, handler start times and peak RSS (MB).

        The arrays as the processes sent them, 16 bytes a job: a soak's
        millions of jobs would take ten times that in a `WorkerRun`.
        """
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send("stop")
        reports = []
        errors = []
        for pipe, proc in zip(self.pipes, self.procs, strict=True):
            if not pipe.poll(timeout):
                errors.append("a worker process did not stop in time")
                continue
            report = pipe.recv()
            proc.join(10)
            if report["error"]:
                errors.append(report["error"])
            ids = array("q")
            ids.frombytes(report["ids"])
            starts = array("d")
            starts.frombytes(report["starts"])
            reports.append((ids, starts, float(report["rss_mb"])))
        self.kill()
        if errors:
            raise RuntimeError("; ".join(errors))
        return reports

    def kill(self) -> None:
        """Terminate whatever is still running (these processes only)."""
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(5)


# -- measurements -----------------------------------------------------------------


@dataclass
class Result:
    """One measurement: a workload with its parameters, on one system."""

    workload: str
    system: str
    value: float  # jobs/s, or p50 ms for latency
    unit: str
    params: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The workload and its parameters, as a row label."""
        params = " ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.workload} {params}".strip()


def _wait_for(
    predicate: Callable[[], bool], timeout: float, what: str, tick: float = 0.002
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(tick)


def _vacuum(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def check_exactly_once(ids: list[int], expected: range) -> None:
    """Raise unless every job in `expected` ran exactly once, and nothing else ran."""
    counts = Counter(ids)
    twice = [i for i, n in counts.items() if n > 1]
    missing = [i for i in expected if i not in counts]
    extra = [i for i in counts if i not in expected]
    if twice or missing or extra:
        raise RuntimeError(
            f"exactly-once violated: {len(twice)} ran twice {twice[:5]}, "
            f"{len(missing)} never ran {missing[:5]}, {len(extra)} unexpected {extra[:5]}"
        )


def drain(
    system: System,
    n: int,
    concurrency: int,
    processes: int,
    job_cpu_us: int = 0,
    *,
    worker_dsn: str | None = None,
) -> tuple[float, WorkerRun]:
    """Run the already-inserted jobs 0..n-1 to completion; returns jobs/s and the run.

    The clock starts when the first handler starts (worker start-up, which
    differs between systems, is not counted) and stops when the database
    shows every job done. Each handler spends `job_cpu_us` of CPU (see
    `_child_main`). The workers connect to `worker_dsn` (such as a pooler in
    front of the database) when given; this process checks on `system.dsn`.
    """
    workers = Workers(
        SYSTEMS[system.name], worker_dsn or system.dsn, concurrency, processes, job_cpu_us
    )
    try:
        _wait_for(lambda: workers.handled() > 0, 120, "the first job to start", tick=0.0005)
        busy, since = _busy_seconds(), time.monotonic()
        _wait_for(lambda: workers.handled() >= n, max(120.0, n / 50), f"{n} jobs to run")
        with psycopg.connect(system.dsn, autocommit=True) as conn:
            _wait_for(lambda: system.remaining(conn) == 0, 30, "the last outcomes")
        finished = time.time()
        busy_after = _busy_seconds()
        took = time.monotonic() - since
    except BaseException:
        workers.kill()
        raise
    run = workers.stop()
    check_exactly_once(run.ids, range(n))
    if busy is not None and busy_after is not None and took > 0:
        run.busy_cores = (busy_after - busy) / took
    return n / (finished - run.first_start), run


def run_drain(
    system: System,
    n: int,
    concurrency: int,
    processes: int,
    job_cpu_us: int = 0,
    *,
    worker_dsn: str | None = None,
) -> Result:
    """`drain`: N pre-inserted jobs (not timed), then the workers start (see `drain`)."""
    system.reset()
    system.insert(0, n)
    _vacuum(system.dsn)
    rate, run = drain(system, n, concurrency, processes, job_cpu_us, worker_dsn=worker_dsn)
    params: dict[str, Any] = {"C": concurrency, "P": processes}
    if job_cpu_us:
        params["cpu_us"] = job_cpu_us
    extra: dict[str, Any] = {"rss_mb": round(run.rss_mb, 1)}
    if run.busy_cores is not None:
        extra["busy_cores"] = round(run.busy_cores, 2)
    return Result("drain", system.name, rate, "jobs/s", params, extra)


# Jobs a system enqueues before the next one takes its turn in `enqueue-single`.
SINGLE_SLICE = 1000


def run_enqueue_single(systems: Sequence[System], n: int) -> tuple[list[Result], dict[str, str]]:
    """`enqueue-single`: N jobs, one transaction each, from one client per system.

    The systems take turns, SINGLE_SLICE jobs at a time, and each one's time
    is the sum of its slices. A whole run of one system takes seconds: long
    enough for a checkpoint, an autovacuum or load elsewhere on the machine
    to slow one system and not the next. Whole runs of pgjobs and raw gave
    pgjobs/raw ratios from 0.78x to 0.91x within one minute. Each turn also
    starts with CPU caches that the other system's client and server filled,
    and that costs the system that does more per job the most: in turns of
    250 jobs the same code read 0.79x, in turns of 1,000 0.81x to 0.87x, in
    whole runs 0.87x to 0.89x (medians of four, 4,000 jobs).

    Returns:
        A result per system that finished, and why each other one failed.
    """
    failed: dict[str, str] = {}

    def why(exc: BaseException) -> str:
        return f"{type(exc).__name__}: {exc}"

    def close(name: str, stack: contextlib.ExitStack) -> None:
        try:
            stack.close()
        except Exception as exc:  # a producer that fails to close fails its system only
            failed.setdefault(name, why(exc))

    # Each system's producer has a stack of its own, closed as soon as the
    # system fails, so that a broken one neither stops the others nor keeps
    # its connections open while they are timed.
    producers: dict[str, tuple[contextlib.ExitStack, JobHook]] = {}
    elapsed: dict[str, float] = {}
    try:
        for system in systems:
            stack = contextlib.ExitStack()
            try:
                system.reset()
                producers[system.name] = (stack, stack.enter_context(system.producer(wake=False)))
                elapsed[system.name] = 0.0
            except Exception as exc:  # keep the other systems' numbers
                failed[system.name] = why(exc)
                close(system.name, stack)
        for start in range(0, n, SINGLE_SLICE):
            for name, (stack, enqueue) in list(producers.items()):
                try:
                    began = time.perf_counter()
                    for i in range(start, min(start + SINGLE_SLICE, n)):
                        enqueue(i)
                    elapsed[name] += time.perf_counter() - began
                except Exception as exc:
                    failed[name] = why(exc)
                    del producers[name]
                    close(name, stack)
    finally:
        for name, (stack, _) in producers.items():
            close(name, stack)
    results = [
        Result("enqueue-single", name, n / elapsed[name], "jobs/s")
        for name in producers
        if name not in failed and elapsed[name] > 0
    ]
    return results, failed


def run_enqueue_bulk(system: System, n: int, batch: int) -> Result:
    """`enqueue-bulk`: N jobs through the bulk API, `batch` per call and transaction."""
    system.reset()
    with psycopg.connect(system.dsn) as conn:
        system.enqueue_bulk(conn, 0, min(batch, n))  # warm-up: first-call costs, not timed
        conn.commit()
        system.reset()
        started = time.perf_counter()
        for start in range(0, n, batch):
            system.enqueue_bulk(conn, start, min(batch, n - start))
            conn.commit()
        elapsed = time.perf_counter() - started
    return Result("enqueue-bulk", system.name, n / elapsed, "jobs/s", {"batch": batch})


def run_latency(system: System, count: int = 200, gap: float = 0.020) -> Result:
    """`latency`: an idle worker, jobs enqueued one at a time `gap` apart; commit to handler start.

    A notifying enqueue is what pgjobs does when a worker waits; the raw
    reference sends its own NOTIFY in each transaction.
    """
    system.reset()
    workers = Workers(SYSTEMS[system.name], system.dsn, 10, 1)
    try:
        time.sleep(1.0)  # let the worker settle into waiting
        committed: dict[int, float] = {}
        with system.producer(wake=True) as enqueue:
            next_at = time.perf_counter()
            for i in range(count):
                enqueue(i)
                committed[i] = time.time()
                next_at += gap
                time.sleep(max(0.0, next_at - time.perf_counter()))
        _wait_for(lambda: workers.handled() >= count, 60, "the latency jobs to run")
    except BaseException:
        workers.kill()
        raise
    run = workers.stop()
    check_exactly_once(run.ids, range(count))
    lat = sorted((run.starts[i] - committed[i]) * 1000 for i in range(count))
    q = statistics.quantiles(lat, n=100, method="inclusive")
    extra = {
        "p50_ms": round(q[49], 2),
        "p95_ms": round(q[94], 2),
        "p99_ms": round(q[98], 2),
        "max_ms": round(lat[-1], 2),
    }
    return Result("latency", system.name, q[49], "ms p50", {}, extra)


def run_backlog(system: System, finished: int, queued: int, concurrency: int) -> list[Result]:
    """`backlog`: drain `queued` jobs with `finished` old rows retained, and on an empty table."""
    system.reset()
    system.insert(0, queued)
    _vacuum(system.dsn)
    base, _ = drain(system, queued, concurrency, 1)
    system.reset()
    system.insert(queued, finished, finished=True)
    system.insert(0, queued)
    _vacuum(system.dsn)
    loaded, _ = drain(system, queued, concurrency, 1)
    params = {"C": concurrency, "finished": finished, "queued": queued}
    return [
        Result(
            "backlog",
            system.name,
            loaded,
            "jobs/s",
            params,
            {"empty_table": round(base), "ratio": round(loaded / base, 3)},
        ),
    ]


def timed_drain(
    system: System, duration: float, concurrency: int, *, hold_xmin: bool
) -> dict[str, float]:
    """Drain for `duration` seconds while a producer keeps the queue topped up.

    With `hold_xmin`, another session holds a REPEATABLE READ snapshot open
    for the whole run, so no row version dead since it started can be vacuumed.
    """
    system.reset()
    chunk = 20_000
    inserted = 2 * chunk
    system.insert(0, inserted)
    _vacuum(system.dsn)
    holder = psycopg.connect(system.dsn)
    try:
        if hold_xmin:
            holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            holder.execute("SELECT count(*) FROM pg_class").fetchone()
        workers = Workers(SYSTEMS[system.name], system.dsn, concurrency, 1)
        try:
            samples: list[tuple[float, int]] = []
            started = time.monotonic()
            while (now := time.monotonic()) - started < duration:
                done = workers.handled()
                samples.append((now, done))
                if inserted - done < chunk:
                    system.insert(inserted, chunk)
                    inserted += chunk
                time.sleep(0.25)
            samples.append((time.monotonic(), workers.handled()))
        except BaseException:
            workers.kill()
            raise
        run = workers.stop()
    finally:
        holder.close()
    duplicates = len(run.ids) - len(set(run.ids))
    if duplicates:
        raise RuntimeError(f"exactly-once violated: {duplicates} jobs ran twice")
    (t0, n0), (t1, n1) = samples[0], samples[-1]
    tail = [s for s in samples if s[0] >= t1 - min(20.0, duration / 4)]
    return {
        "rate": (n1 - n0) / (t1 - t0),
        "last_window_rate": (tail[-1][1] - tail[0][1]) / max(1e-9, tail[-1][0] - tail[0][0]),
    }


def run_long_transaction(system: System, duration: float, concurrency: int) -> list[Result]:
    """`long-transaction`: the timed drain rate with xmin pinned, against the rate without."""
    base = timed_drain(system, duration, concurrency, hold_xmin=False)
    pinned = timed_drain(system, duration, concurrency, hold_xmin=True)
    params = {"C": concurrency, "seconds": int(duration)}
    extra = {
        "baseline": round(base["rate"]),
        "baseline_last_window": round(base["last_window_rate"]),
        "pinned_last_window": round(pinned["last_window_rate"]),
        "ratio": round(pinned["rate"] / base["rate"], 3),
    }
    return [Result("long-transaction", system.name, pinned["rate"], "jobs/s", params, extra)]


def run_soak(
    system: System,
    *,
    rate: int,
    duration: float,
    concurrency: int,
    processes: int,
    interval: float = _soak.DEFAULT_INTERVAL,
    hold: tuple[float, float] | None = None,
    say: Callable[[str], None] = print,
) -> Result:
    """`soak`: `rate` jobs/s of 1 ms for `duration` seconds; a row of measurements per interval.

    The workers start first; the producer (a thread, see `_soak.Producer`)
    then enqueues for `duration` seconds while this thread samples the jobs
    run every tick and, at the end of each interval, the queue depth and the
    statistics of the system's tables. Retention is the worker's default, so
    finished jobs stay, as in production. When the producer stops, the
    workers get up to `_soak.DRAIN_TIMEOUT` seconds to run the rest; a job
    neither run nor still queued then is lost, and fails the workload.

    With `hold` (seconds from the start, from and to), another session holds
    a snapshot open for that window (`_soak.Holder`), and the result says how
    throughput held up under it and how soon after its release the backlog
    was back to what it was before (`_soak.hold_summary`).
    """
    system.reset()
    _vacuum(system.dsn)
    workers = Workers(SYSTEMS[system.name], system.dsn, concurrency, processes)
    producer = _soak.Producer(system.dsn, system.enqueue_soak, rate)
    holder: _soak.Holder | None = None
    tick = min(1.0, interval / 8)
    try:
        with psycopg.connect(system.dsn, autocommit=True) as conn:
            base = workers.handled()
            start = _soak.Snapshot(0.0, 0, 0, system.remaining(conn))
            start.tables = _soak.table_stats(conn, system.schema)
            producer.start()
            began, began_wall = time.monotonic(), time.time()
            if hold is not None:
                holder = _soak.Holder(system.dsn, began, *hold)
                holder.start()
            samples: list[tuple[float, int]] = [(0.0, 0)]
            flow: list[tuple[float, int, int]] = [(0.0, 0, 0)]
            snapshots = [start]
            rows: list[dict[str, Any]] = []
            ending = False
            while not ending and producer.error is None and not (holder and holder.error):
                time.sleep(max(0.0, min(tick, duration - (time.monotonic() - began))))
                if ending := time.monotonic() - began >= duration:
                    producer.finish()  # before the last snapshot, which counts what it enqueued
                now = time.monotonic() - began
                samples.append((now, workers.handled() - base))
                flow.append((now, producer.enqueued, samples[-1][1]))
                if ending or now >= len(snapshots) * interval:
                    snap = _soak.Snapshot(now, producer.enqueued, samples[-1][1], 0)
                    snap.depth = system.remaining(conn)
                    snap.tables = _soak.table_stats(conn, system.schema)
                    snapshots.append(snap)
                    rows = _soak.series(snapshots, [], interval)
                    say(_soak.progress(rows[-1]))
            producer.finish()
            if holder:
                holder.finish()
            enqueued = producer.enqueued
            handled_at_end = samples[-1][1]
            # What is still queued runs now, for a while; a backlog too long
            # for that stays queued, and is counted as such, not as lost.
            deadline = time.monotonic() + _soak.DRAIN_TIMEOUT
            while time.monotonic() < deadline and not (
                workers.handled() - base >= enqueued and system.remaining(conn) == 0
            ):
                time.sleep(0.05)
            reports = workers.stop_arrays()
            left = system.remaining(conn)
    except BaseException:
        with contextlib.suppress(Exception):
            producer.finish()
        with contextlib.suppress(Exception):
            if holder:
                holder.finish()
        workers.kill()
        raise
    jobs = _soak.accounting((ids for ids, _, _ in reports), enqueued, left)
    if jobs["lost"] or jobs["ran_twice"] or jobs["unexpected"]:
        raise RuntimeError(f"exactly-once violated in the soak: {jobs}")
    buckets = _soak.latency_buckets(
        ((ids, starts) for ids, starts, _ in reports),
        producer.batch_starts,
        producer.batch_commits,
        began_wall,
        interval,
        len(snapshots) - 1,
    )
    rows = _soak.series(snapshots, buckets, interval)
    end = snapshots[-1].t
    extra = {
        "interval_s": interval,
        "latency": "enqueue commit to handler start",
        "enqueued": enqueued,
        "drained": jobs["ran"] - handled_at_end,
        "jobs": jobs,
        "rss_mb": round(max((rss for _, _, rss in reports), default=0.0), 1),
        "end_ratio": _soak.end_ratio(samples, interval),
        "tables_at_start": start.tables,
        "intervals": rows,
    }
    if holder:
        if holder.held is None:
            raise RuntimeError(f"the soak ended before the hold {hold} began")
        extra["hold"] = _soak.hold_summary(flow, holder.held, interval)
    params = {"rate": rate, "C": concurrency, "P": processes, "seconds": round(duration)}
    return Result("soak", system.name, handled_at_end / end, "jobs/s", params, extra)


# -- scratch databases ------------------------------------------------------------------


@contextlib.contextmanager
def scratch_database(server_dsn: str, label: str) -> Iterator[str]:
    """A new empty database on the server, dropped on exit; yields its DSN."""
    name = f"pgjobs_bench_{label}_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_conninfo(server_dsn, dbname=name)
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def server(dsn: str | None) -> Iterator[str]:
    """The server to benchmark: `dsn`, else an embedded PostgreSQL started for the run."""
    if dsn:
        yield dsn
        return
    from pgjobs._embedded import EmbeddedPostgres

    with EmbeddedPostgres() as embedded:
        yield embedded.dsn


def environment(server_dsn: str) -> dict[str, Any]:
    """The machine, the server's version and the settings that move these numbers."""
    settings = (
        "shared_buffers",
        "synchronous_commit",
        "fsync",
        "wal_level",
        "max_connections",
        "work_mem",
        "checkpoint_timeout",
        "max_wal_size",
    )
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        values = {s: conn.execute(f"SHOW {s}").fetchone() for s in settings}
    host = conninfo_to_dict(server_dsn).get("host", "")
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.release()}",
        "python": platform.python_version(),
        "psycopg": psycopg.__version__,
        "postgres": version[0] if version else "?",
        "server": "embedded" if str(host).startswith("/") else _dsn.redact(server_dsn),
        "settings": {k: v[0] if v else None for k, v in values.items()},
    }


# -- the report ----------------------------------------------------------------------


def _fmt(result: Result) -> str:
    if result.workload == "latency":
        e = result.extra
        return f"{e['p50_ms']:.1f}/{e['p95_ms']:.1f}/{e['p99_ms']:.1f}"
    return f"{result.value:,.0f}"


def table(results: list[Result], systems: list[str]) -> str:
    """One row per workload, one column per system, and pgjobs' ratios to raw and the best peer."""
    rows: dict[str, dict[str, Result]] = {}
    for r in results:
        rows.setdefault(r.key, {})[r.system] = r
    header = ["workload", *systems]
    has_raw = "raw" in systems and "pgjobs" in systems
    peers = [s for s in systems if s in PEERS]
    if has_raw:
        header.append("pgjobs/raw")
    if peers and "pgjobs" in systems:
        header.append("pgjobs/best peer")
    lines = [header]
    for key, by_system in rows.items():
        line = [key] + [_fmt(by_system[s]) if s in by_system else "-" for s in systems]
        mine = by_system.get("pgjobs")
        lower_is_better = key.startswith("latency")
        if has_raw:
            raw = by_system.get("raw")
            line.append(_ratio(mine, raw, lower_is_better) if mine and raw else "-")
        if peers and "pgjobs" in systems:
            theirs = [by_system[p] for p in peers if p in by_system]
            best = (min if lower_is_better else max)(theirs, key=lambda r: r.value, default=None)
            line.append(
                f"{_ratio(mine, best, lower_is_better)} ({best.system})" if mine and best else "-"
            )
        lines.append(line)
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    out = []
    for n, row in enumerate(lines):
        out.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    notes = [
        f"  {r.system} {r.key}: " + ", ".join(f"{k}={v}" for k, v in r.extra.items())
        for r in results
        if r.extra and r.workload not in ("latency", "soak")
    ]
    if any(r.workload == "latency" for r in results):
        notes.insert(
            0,
            "  latency cells are p50/p95/p99 ms, commit to handler start; "
            "ratios for latency are other/pgjobs (higher is better)",
        )
    soaks = [_soak.render(r.params, r.extra) for r in results if r.workload == "soak"]
    return "\n".join(out + (["", *notes] if notes else []) + [f"\n{s}" for s in soaks])


def _ratio(mine: Result, other: Result, lower_is_better: bool) -> str:
    value = other.value / mine.value if lower_is_better else mine.value / other.value
    return f"{value:.2f}x"


@dataclass
class Target:
    """One performance target (a bar pgjobs holds itself to), and whether this run cleared it."""

    name: str
    measured: str
    bar: str
    met: bool


def targets(results: list[Result]) -> list[Target]:
    """Check the performance targets against whatever this run measured."""
    by = {(r.system, r.key): r for r in results}
    out: list[Target] = []

    def get(system: str, key: str) -> Result | None:
        return by.get((system, key))

    for c in (50, 10):
        mine, raw = get("pgjobs", f"drain C={c} P=1"), get("raw", f"drain C={c} P=1")
        if mine and raw:
            ratio = mine.value / raw.value
            out.append(Target(f"drain C={c} vs raw", f"{ratio:.3f}x", ">= 0.6x", ratio >= 0.6))
        peers = [r for p in PEERS if (r := get(p, f"drain C={c} P=1"))]
        if mine and peers and c == 50:
            best = max(peers, key=lambda r: r.value)
            ratio = mine.value / best.value
            out.append(
                Target(
                    f"drain C={c} vs best peer ({best.system})",
                    f"{ratio:.3f}x",
                    ">= 3x",
                    ratio >= 3,
                )
            )
    single, raw_single = get("pgjobs", "enqueue-single"), get("raw", "enqueue-single")
    if single and raw_single:
        ratio = single.value / raw_single.value
        out.append(Target("enqueue-single vs raw", f"{ratio:.3f}x", ">= 0.8x", ratio >= 0.8))
    bulk = next((r for r in results if r.system == "pgjobs" and r.workload == "enqueue-bulk"), None)
    if bulk:
        raw_bulk = get("raw", bulk.key)
        ok = bulk.value >= 100_000
        measured = f"{bulk.value:,.0f}/s"
        if raw_bulk:
            ratio = bulk.value / raw_bulk.value
            measured += f", {ratio:.3f}x raw"
            ok = ok and ratio >= 0.5
        out.append(Target("enqueue-bulk", measured, ">= 100,000/s and >= 0.5x raw", ok))
    lat = get("pgjobs", "latency")
    if lat:
        p50, p99 = lat.extra["p50_ms"], lat.extra["p99_ms"]
        out.append(
            Target(
                "latency (idle worker)",
                f"p50 {p50} ms, p99 {p99} ms",
                "p50 <= 2 ms, p99 <= 5 ms",
                p50 <= 2 and p99 <= 5,
            )
        )
    for c in (50, 10, 100):
        one, two = get("pgjobs", f"drain C={c} P=1"), get("pgjobs", f"drain C={c} P=2")
        if one and two:
            ratio = two.value / one.value
            measured = f"{ratio:.3f}x"
            busy, cores = one.extra.get("busy_cores"), os.cpu_count()
            if busy and cores:
                # The machine's idle share is what a second process can use:
                # at the same CPU per job, two drain at most cores/busy times one.
                measured += f" (one kept {busy:.2f} of {cores} cores busy: <= {cores / busy:.2f}x)"
            out.append(Target(f"--processes 2 vs 1 (C={c})", measured, ">= 1.6x", ratio >= 1.6))
    for r in results:
        if r.system != "pgjobs":
            continue
        if r.workload == "backlog":
            out.append(
                Target(
                    "backlog vs empty table",
                    f"{r.extra['ratio']:.3f}x",
                    ">= 0.8x",
                    r.extra["ratio"] >= 0.8,
                )
            )
        if r.workload == "long-transaction":
            out.append(
                Target(
                    f"long-transaction vs baseline ({r.params['seconds']} s)",
                    f"{r.extra['ratio']:.3f}x",
                    ">= 0.5x (run >= 120 s)",
                    r.extra["ratio"] >= 0.5 and r.params["seconds"] >= 120,
                )
            )
        if r.workload == "drain" and r.params.get("C") == 100:
            rss = r.extra["rss_mb"]
            out.append(
                Target(
                    f"worker RSS at C=100 (P={r.params['P']})",
                    f"{rss:.0f} MB",
                    "< 100 MB",
                    rss < 100,
                )
            )
    return out


# -- the command (its options are in pgjobs/cli/_bench.py) ---------------------------

#: What `--duration` defaults to, by workload.
LONG_TRANSACTION_SECONDS = 120.0
SOAK_SECONDS = 1800.0


def run(args: argparse.Namespace) -> int:
    systems: list[str] = list(dict.fromkeys(args.systems + (["raw"] if args.compare_raw else [])))
    workloads: list[str] = list(dict.fromkeys(args.workload or DEFAULT_WORKLOADS))
    say = (lambda text: print(text, file=sys.stderr, flush=True)) if args.json else print
    runs: dict[tuple[str, str], list[Result]] = {}
    skipped: dict[str, str] = {}
    with server(_dsn.resolve(args.dsn)) as server_dsn, contextlib.ExitStack() as stack:
        env = environment(server_dsn)
        say(f"pgjobs bench on PostgreSQL {env['postgres']} ({env['server']}), {env['machine']}")
        ready: list[System] = []
        for name in systems:
            try:
                db = stack.enter_context(scratch_database(server_dsn, name))
                system = load_system(name, db)
                system.setup()
                ready.append(system)
            except Exception as exc:  # a peer that cannot run here is reported, not fatal
                skipped[name] = f"{type(exc).__name__}: {exc}"
                say(f"  {name}: skipped: {skipped[name]}")

        def record(measured: list[Result]) -> None:
            for result in measured:
                # The soak's series is its report, at the end: here, the mean only.
                extra = result.extra and result.workload != "soak"
                say(
                    f"  {result.system:14} {result.key:40} {_fmt(result):>14} "
                    f"{result.unit} {json.dumps(result.extra) if extra else ''}"
                )
                runs.setdefault((result.system, result.key), []).append(result)

        def fail(name: str, workload: str, why: str) -> None:
            skipped[name] = f"{workload}: {why}"
            say(f"  {name}: failed: {skipped[name]}")

        # Workload by workload, the systems take turns (in alternating order
        # when repeated), so a burst of load elsewhere on the machine hits
        # them alike and the ratios stay meaningful.
        for workload in workloads:
            for repeat in range(args.repeat):
                order = [
                    system
                    for system in (ready if repeat % 2 == 0 else ready[::-1])
                    if workload in system.supports and system.name not in skipped
                ]
                if workload == "enqueue-single":  # all systems at once, in turns
                    measured, failed = run_enqueue_single(order, args.jobs)
                    for name, why in failed.items():
                        fail(name, workload, why)
                    record(measured)
                    continue
                for system in order:
                    try:
                        record(_measure(system, workload, args, say))
                    except Exception as exc:  # keep the other systems' numbers
                        fail(system.name, workload, f"{type(exc).__name__}: {exc}")
    results = [_median(group) for group in runs.values()]
    checked = targets(results)
    if args.json:
        print(
            json.dumps(
                {
                    "environment": env,
                    "results": [asdict(r) for r in results],
                    "targets": [asdict(t) for t in checked],
                    "skipped": skipped,
                },
                indent=2,
            )
        )
    else:
        print()
        if args.repeat > 1:
            print(f"median of {args.repeat} runs")
        print(table(results, [s.name for s in ready]))
        if checked:
            print()
            width = max(len(t.name) for t in checked)
            for t in checked:
                print(
                    f"  {t.name:{width}}  {t.measured:>22}  bar {t.bar:28} "
                    f"{'met' if t.met else 'MISSED'}"
                )
        for name, why in skipped.items():
            print(f"  {name}: {why}")
    return 1 if any("exactly-once" in why for why in skipped.values()) else 0


def _median(group: list[Result]) -> Result:
    """The run with the median value (the upper one of an even count)."""
    return sorted(group, key=lambda r: r.value)[len(group) // 2]


def _measure(
    system: System, workload: str, args: argparse.Namespace, say: Callable[[str], None] = print
) -> list[Result]:
    n: int = args.jobs
    c_max = max(args.concurrency)
    if workload == "enqueue-bulk":
        return [run_enqueue_bulk(system, n, args.batch)]
    if workload == "drain":
        return [
            run_drain(system, n, c, p, args.job_cpu_us)
            for p in args.processes
            for c in args.concurrency
        ]
    if workload == "latency":
        return [run_latency(system)]
    if workload == "backlog":
        return run_backlog(system, args.backlog_finished, args.backlog_queued, c_max)
    if workload == "long-transaction":
        return run_long_transaction(system, args.duration or LONG_TRANSACTION_SECONDS, c_max)
    if workload == "soak":
        return [
            run_soak(
                system,
                rate=args.rate,
                duration=args.duration or SOAK_SECONDS,
                concurrency=c,
                processes=p,
                interval=args.soak_interval,
                hold=args.hold_xmin,
                say=say,
            )
            for p in args.processes
            for c in args.concurrency
        ]
    raise AssertionError(workload)
