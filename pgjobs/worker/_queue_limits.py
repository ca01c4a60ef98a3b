"""Queue limits: the App's `app.queue` declarations, written to pgjobs.queues at worker start."""

from __future__ import annotations

from typing import Any

from psycopg_pool import AsyncConnectionPool

from pgjobs._app import App
from pgjobs._log import get_logger
from pgjobs.worker._db import fetch


async def sync_queue_limits(pool: AsyncConnectionPool[Any], app: App) -> list[str]:
    """Upsert the App's declared queue limits into pgjobs.queues; returns the queues changed.

    As with schedules, the last worker started wins: a limit changed from SQL
    holds until a worker whose code declares that queue starts. Queues the
    code does not declare are left as they are.
    """
    declared = list(app.queues.values())
    if not declared:
        return []
    rows = await fetch(
        pool,
        "queue_limits_upsert",
        {
            "names": [q.name for q in declared],
            "concurrencies": [q.concurrency for q in declared],
            "key_concurrencies": [q.key_concurrency for q in declared],
            "rate_limits": [q.rate_limit for q in declared],
            "rate_bursts": [q.rate_burst for q in declared],
            "key_rate_limits": [q.key_rate_limit for q in declared],
            "key_rate_bursts": [q.key_rate_burst for q in declared],
        },
    )
    changed = [str(row["name"]) for row in rows]
    log = get_logger()
    emit = log.info if changed else log.debug
    emit("queues.synced", declared=len(declared), changed=changed)
    return changed
