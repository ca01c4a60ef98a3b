"""Transactional tasks: the handler's writes and the job's success commit together.

`@app.task(transactional=True)`: the executor runs such a job's handler (and
its middleware) inside a transaction on a connection of its own, which the
handler reads as `pgjobs.current_job().conn`. Once the handler returns, the
job's success is written in that same transaction (complete_one.sql, fenced
as the completer's batches are) and the transaction commits: the effects
and the success are durable together, or not at all. A worker killed before
the commit leaves nothing behind (the server rolls back a transaction whose
client went away); the rescued job runs again and writes its effects once.

What goes wrong, and what is left:
- the handler raises (or runs past its timeout): the transaction rolls
  back, and the executor records the failure through the completer, as for
  any task;
- the fence finds nothing (the job was rescued, cancelled or re-claimed
  while the handler ran): the transaction rolls back, nothing else is
  written, and `job.transaction_fenced` is logged;
- the handler leaves the transaction idle past the task's
  `idle_in_transaction_timeout`: PostgreSQL ends the session and rolls back;
  the attempt fails with a TransactionIdleError naming the setting;
- the connection is lost around the commit: the failure goes through the
  completer, whose fence drops it if the commit did happen.

The connections come from a pool of their own, not the worker's: that one
is two connections shared by the heartbeat and the leader's duties, which a
handler must not hold up. It opens connections only when a transactional job
runs (min_size 0), at most one per running job (max_size is the worker's
concurrency), and closes one unused for POOL_MAX_IDLE seconds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from pgjobs import _connect, _sql
from pgjobs._context import JobContext
from pgjobs._log import get_logger
from pgjobs._task import TaskConfig
from pgjobs.errors import TransactionIdleError
from pgjobs.worker._outcome import ClaimedJob, Outcome

#: Seconds an unused transaction connection stays open: a steady stream of
#: transactional jobs reuses them, a worker without any soon holds none.
POOL_MAX_IDLE = 30.0
#: Seconds a job waits for a connection (there is one per slot, so a wait
#: means the server refuses or is slow to accept connections).
POOL_TIMEOUT = 10.0
#: The status of a written Outcome whose transaction the fence rolled back.
FENCED = "fenced"
# The SQLSTATE of a session ended by idle_in_transaction_session_timeout.
_IDLE_TIMEOUT_SQLSTATE = "25P03"


class _FencedError(Exception):
    """complete_one.sql matched no row: roll back, write nothing."""


class Transactions:
    """The connections of a worker's transactional jobs, and how one such job runs.

    Args:
        dsn: where to connect.
        worker_id: the worker's id, which the fence checks.
        size: the most connections at once: the worker's concurrency.
        pooled: the DSN may be a transaction pooler: never prepare.
    """

    def __init__(self, dsn: str, *, worker_id: int, size: int, pooled: bool = False) -> None:
        self.worker_id = worker_id
        self.pooled = pooled
        self.pool = _connect.async_pool(
            dsn,
            _connect.WORKER,
            min_size=0,
            max_size=max(1, size),
            max_idle=POOL_MAX_IDLE,
            timeout=POOL_TIMEOUT,
            name="pgjobs-transactions",
            pooled=pooled,
        )
        self._prepare = None if pooled else True
        #: Successes rolled back because the fence found the job gone.
        self.fenced = 0
        self._log = get_logger(worker_id=worker_id)

    async def open(self) -> None:
        """Open the pool (no connection yet: the first transactional job opens one)."""
        await self.pool.open(wait=False)

    async def close(self) -> None:
        """Close the pool and its connections."""
        await self.pool.close()

    async def run(
        self,
        job: ClaimedJob,
        config: TaskConfig,
        context: JobContext,
        call: Callable[[], Awaitable[Any]],
        result_json: Callable[[Any], str | None],
    ) -> Outcome:
        """Run `call` (the handler, through its middleware) in a transaction that records success.

        Returns:
            A written Outcome: `succeeded`, committed with the handler's
            writes, or (fenced) nothing committed at all.

        Raises:
            Exception: what the handler raised, after the rollback (the
                executor records the failure through the completer), or a
                TransactionIdleError when PostgreSQL ended the idle transaction.
        """
        idle = config.idle_in_transaction_timeout
        conn = await self.pool.getconn()
        try:
            context._conn = conn
            try:
                async with conn.transaction():
                    await conn.execute(
                        _sql.psycopg("transaction_begin"),
                        {"idle_ms": max(1, round(idle * 1000))},
                        prepare=self._prepare,
                    )
                    result = await call()
                    params = {
                        "id": job.id,
                        "attempt": job.attempts,
                        "worker_id": self.worker_id,
                        "result": result_json(result),
                        "keep": config.keep_history,
                    }
                    cur = await conn.execute(
                        _sql.psycopg("complete_one"), params, prepare=self._prepare
                    )
                    if await cur.fetchone() is None:
                        raise _FencedError
            except _FencedError:
                self.fenced += 1
                self._log.warning(
                    "job.transaction_fenced",
                    job_id=job.id,
                    task=job.task,
                    attempt=job.attempts,
                    note="the job was rescued, cancelled or claimed again while its handler "
                    "ran; its transaction was rolled back, the handler's writes with it",
                )
                return Outcome(job.id, job.attempts, FENCED, 0.0, None, None, written=True)
            except psycopg.Error as exc:
                idle_ended = _ended_idle(exc)
                if idle_ended is not None:
                    raise TransactionIdleError(job.task, idle, idle_ended) from exc
                raise
        finally:
            context._conn = None
            await self.pool.putconn(conn)
        return Outcome(job.id, job.attempts, "succeeded", 0.0, None, None, written=True)


def _ended_idle(exc: BaseException) -> str | None:
    """The server's message when `exc` (or what caused it) is the idle-in-transaction timeout."""
    seen: BaseException | None = exc
    while seen is not None:
        if getattr(seen, "sqlstate", None) == _IDLE_TIMEOUT_SQLSTATE or (
            "idle-in-transaction timeout" in str(seen)
        ):
            return str(seen).strip().splitlines()[0] if str(seen).strip() else "25P03"
        seen = seen.__cause__ or seen.__context__
    return None
