"""Webhooks: keeps pgjobs.webhooks in step with the code, and runs the delivery jobs.

Deliveries are made by the database, in the transaction that records a
job's outcome (migration 0011); here they are only run. Every worker runs
them, whether or not its App declares a webhook: a webhook added by SQL
fires for jobs of any App, and its deliveries wait on the queue of the job
that fired (or the webhook's own), which some worker of that queue claims.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from pgjobs import _sql, _webhooks
from pgjobs._app import App
from pgjobs._context import current_job
from pgjobs._log import get_logger
from pgjobs._options import EnqueueOptions
from pgjobs._retry import Exponential
from pgjobs._task import Task, TaskConfig
from pgjobs.errors import ConfigurationError
from pgjobs.worker._db import fetch

#: The backoff between a delivery's attempts: 1 s, 3 s, 9 s ... up to an
#: hour (see _webhooks.DEFAULT_MAX_ATTEMPTS for what that adds up to).
DELIVERY_RETRY = Exponential(base=1.0, factor=3.0)

_INSTALL = "pip install 'pgjobs[webhooks]'"


class WebhookDeliveryError(Exception):
    """An endpoint did not take a delivery: an error status, no answer in time, no connection.

    The delivery job fails its attempt with this, and is retried with
    DELIVERY_RETRY until its attempts run out (then it is dead-lettered,
    `failed`, and can be replayed with `jobs retry`).
    """


def check_client(app: App) -> None:
    """Refuse to start a worker whose App declares webhooks without httpx installed.

    Raises:
        ConfigurationError: httpx is missing; the message says what to install.
    """
    if not app.webhooks:
        return
    try:
        import httpx  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            f"this App declares webhooks ({', '.join(sorted(app.webhooks))}), and delivering "
            f"them needs httpx: {_INSTALL}"
        ) from None


async def sync_webhooks(pool: AsyncConnectionPool[Any], app: App) -> dict[str, list[str]]:
    """Upsert the App's webhooks into pgjobs.webhooks; deactivate code webhooks it no longer has.

    Runs when a worker starts, in one transaction, as `sync_schedules` does
    for schedules: the last worker to start with different code wins.
    Webhooks added by SQL are left alone.

    Returns:
        The names written ("changed": new or redefined) and deactivated ("removed").
    """
    params = _webhooks.rows(app.webhooks)
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        changed: list[str] = []
        if params["names"]:
            await cur.execute(_sql.psycopg("webhook_upsert"), params)
            changed = [str(r["name"]) for r in await cur.fetchall()]
        await cur.execute(_sql.psycopg("webhook_deactivate"), {"names": params["names"]})
        removed = [str(r["name"]) for r in await cur.fetchall()]
    log = get_logger()
    emit = log.info if changed or removed else log.debug
    emit("webhooks.synced", active=len(params["names"]), changed=changed, removed=removed)
    return {"changed": changed, "removed": removed}


def delivery_task(app: App, pool: AsyncConnectionPool[Any]) -> Task[Any, Any]:
    """The task that runs delivery jobs, reading webhooks through the worker's `pool`."""

    async def deliver(webhook: str, payload: dict[str, Any]) -> dict[str, Any]:
        rows = await fetch(pool, "webhook_get", {"name": webhook})
        if not rows or not rows[0]["active"]:
            # Removed (or deactivated) since it fired: nobody wants it now.
            get_logger().info("webhook.dropped", webhook=webhook, reason="webhook removed")
            return {"dropped": f"webhook {webhook!r} no longer exists or is inactive"}
        row = rows[0]
        status = await post(
            row["url"],
            row["secret"],
            payload,
            delivery=current_job().id,
            seconds=float(row["timeout"]),
        )
        return {"status": status}

    config = TaskConfig(timeout=None, retry=DELIVERY_RETRY, keep_result=True)
    defaults = EnqueueOptions(max_attempts=_webhooks.DEFAULT_MAX_ATTEMPTS)
    return Task(app, deliver, _webhooks.DELIVERY_TASK, defaults, config)


async def post(
    url: str, secret: str, payload: dict[str, Any], *, delivery: int, seconds: float
) -> int:
    """POST one signed delivery; returns the endpoint's status (2xx).

    The whole request, connecting included, has `seconds`: httpx's
    own timeouts bound each phase (a server trickling its answer byte by
    byte would pass them), so asyncio bounds the total.

    Raises:
        WebhookDeliveryError: a status other than 2xx (redirects are not
            followed), no answer within `seconds`, or no connection.
        ConfigurationError: httpx is not installed.
    """
    try:
        import httpx
    except ImportError:
        raise ConfigurationError(f"delivering webhooks needs httpx: {_INSTALL}") from None
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "pgjobs-webhooks",
        _webhooks.HEADER_EVENT: str(payload.get("event", "")),
        _webhooks.HEADER_DELIVERY: str(delivery),
        _webhooks.HEADER_TIMESTAMP: timestamp,
        _webhooks.HEADER_SIGNATURE: _webhooks.signature(secret, timestamp, body),
    }
    try:
        async with httpx.AsyncClient(timeout=seconds, follow_redirects=False) as client:
            response = await asyncio.wait_for(
                client.post(url, content=body, headers=headers), seconds
            )
    except (TimeoutError, httpx.TimeoutException):
        raise WebhookDeliveryError(f"{url} did not answer within {seconds:g}s") from None
    except httpx.HTTPError as exc:
        raise WebhookDeliveryError(f"{url} could not be reached: {exc}") from None
    if not 200 <= response.status_code < 300:
        raise WebhookDeliveryError(
            f"{url} answered {response.status_code} {response.reason_phrase}"
        )
    return response.status_code
