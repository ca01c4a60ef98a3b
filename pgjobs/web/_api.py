"""The HTTP JSON API under /api/v1 and /healthz (described by _openapi.spec()), and /metrics."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pgjobs import _admin, _migrate, _queue
from pgjobs._admin import JobSummary
from pgjobs.errors import UnknownTaskError
from pgjobs.web import _auth, _http, _metrics, _queries
from pgjobs.web._auth import Principal
from pgjobs.web._dashboard import (
    ApiResponse,
    Dashboard,
    as_http_error,
    read_empty_body,
    read_json_object,
)
from pgjobs.web._http import HttpError

#: The header that carries the CSRF token on a state change made with the session cookie.
CSRF_HEADER = "X-CSRF-Token"


def _dash(request: Request) -> Dashboard:
    dash: Dashboard = request.app.state.dashboard
    return dash


def summary_json(job: JobSummary) -> dict[str, Any]:
    """One line of a jobs list."""
    return {
        "id": job.id,
        "queue": job.queue,
        "task": job.task,
        "state": job.state,
        "status": job.status,
        "priority": job.priority,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "run_at": job.run_at,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "last_error_type": job.last_error_type,
        "last_error_message": job.last_error_message,
        "last_error_at": job.last_error_at,
        "progress": job.progress,
    }


async def list_page(dash: Dashboard, query: _http.JobQuery) -> tuple[list[JobSummary], str | None]:
    """One page of jobs for a parsed query, and the cursor of the next page."""
    async with dash.db.connection() as conn:
        if query.fingerprint is not None:
            jobs = await _queries.jobs_by_fingerprint(
                conn, query.fingerprint, limit=query.limit, before_id=query.before_id
            )
        elif query.searched:
            jobs = await _queries.jobs_search(conn, query.search_params())
        elif query.status in _admin.DERIVED_STATES:
            jobs = await _queries.jobs_in_derived_state(conn, query.filter)
        else:
            jobs = await _admin.list_jobs_async(conn, query.filter)
    following = _http.encode_cursor(jobs[-1].id) if len(jobs) == query.limit else None
    return jobs, following


# -- health ----------------------------------------------------------------


async def healthz(request: Request) -> Response:
    """200 when the database answers and its schema is inside this code's compatible window."""
    dash = _dash(request)
    try:
        async with dash.db.connection() as conn:
            found = await _queries.schema(conn)
        _migrate.check_schema(found)
    except Exception as exc:
        error = as_http_error(exc)
        if error is None:
            raise
        body = {"status": "unavailable", **error.body()}
        return ApiResponse(body, status_code=503)
    revision = found.revision if found else None
    return ApiResponse({"status": "ok", "database": "ok", "schema_revision": revision})


async def metrics(request: Request) -> Response:
    """GET /metrics (viewer): queue depths, oldest due ages and dead rows, for Prometheus."""
    dash = _dash(request)
    dash.require(request)
    async with dash.db.connection() as conn:
        queues, tables = await _metrics.read(conn, stale_after=dash.stale_after)
    body = _metrics.exposition(queues, tables)
    return Response(body, headers={"content-type": _metrics.CONTENT_TYPE})


# -- jobs ------------------------------------------------------------------


async def list_jobs(request: Request) -> Response:
    """GET /jobs: newest first, filtered, one keyset page."""
    dash = _dash(request)
    dash.require(request)
    query = _http.job_query(request.query_params)
    jobs, following = await list_page(dash, query)
    return ApiResponse({"jobs": [summary_json(j) for j in jobs], "next_cursor": following})


async def submit_job(request: Request) -> Response:
    """POST /jobs: enqueue a job of a task the App knows."""
    dash = _dash(request)
    who = _admin_request(request)
    sub = _http.submission(await read_json_object(request))
    if dash.app.task_for(sub.task) is None:
        raise UnknownTaskError(sub.task, list(dash.app.tasks))
    spec = dash.app.job(
        sub.task,
        sub.args,
        queue=sub.queue,
        priority=sub.priority,
        delay=sub.delay,
        run_at=sub.run_at,
        max_attempts=sub.max_attempts,
        fingerprint=sub.fingerprint,
        meta={"submitted_by": who.name, "via": "pgjobs-dashboard"},
    )
    async with dash.db.connection() as conn:
        job_id = await _admin.enqueue_async(conn, spec)
        if job_id is None:  # on_conflict "raise" raises where "skip" returns None
            raise RuntimeError("a submitted job was skipped as a duplicate")
        detail = await _admin.get_job_async(conn, job_id)
    dash.action(who, "job.submit", job_id=job_id, task=sub.task, queue=detail.job.queue)
    return ApiResponse(dash.job_json(detail, who), status_code=201)


async def get_job(request: Request) -> Response:
    """GET /jobs/{id}."""
    dash = _dash(request)
    who = dash.require(request)
    job_id = _http.job_id(request.path_params["id"])
    async with dash.db.connection() as conn:
        detail = await _admin.get_job_async(conn, job_id)
    return ApiResponse(dash.job_json(detail, who))


async def retry_job(request: Request) -> Response:
    """POST /jobs/{id}/retry."""
    return await _job_action(request, "retry")


async def cancel_job(request: Request) -> Response:
    """POST /jobs/{id}/cancel."""
    return await _job_action(request, "cancel")


async def _job_action(request: Request, action: str) -> Response:
    dash = _dash(request)
    who = _admin_request(request)
    job_id = _http.job_id(request.path_params["id"])
    await read_empty_body(request)
    async with dash.db.connection() as conn:
        if action == "retry":
            await _admin.retry_job_async(conn, job_id)
        else:
            await _admin.cancel_job_async(conn, job_id, by=f"api:{who.name}")
        detail = await _admin.get_job_async(conn, job_id)
    dash.action(who, f"job.{action}", job_id=job_id, task=detail.job.task)
    return ApiResponse(dash.job_json(detail, who))


async def delete_job(request: Request) -> Response:
    """DELETE /jobs/{id}: remove a job that is not running."""
    dash = _dash(request)
    who = _admin_request(request)
    job_id = _http.job_id(request.path_params["id"])
    await read_empty_body(request)
    async with dash.db.connection() as conn:
        await _queries.delete_job(conn, job_id)
    dash.action(who, "job.delete", job_id=job_id)
    return ApiResponse({"deleted": job_id})


async def bulk_retry(request: Request) -> Response:
    """POST /jobs/retry-failed: retry every failed job of a task and/or queue."""
    dash = _dash(request)
    who = _admin_request(request)
    queue, task = _bulk_filters(await read_json_object(request))
    async with dash.db.connection() as conn:
        result = await _admin.retry_jobs_async(conn, status="failed", queue=queue, task=task)
    dash.action(who, "jobs.retry_failed", queue=queue, task=task, jobs=result.total)
    return ApiResponse({"jobs": result.total, "per_queue": result.per_queue})


async def bulk_cancel(request: Request) -> Response:
    """POST /jobs/cancel-queued: cancel the queued jobs of a queue and/or task, stop the running."""
    dash = _dash(request)
    who = _admin_request(request)
    queue, task = _bulk_filters(await read_json_object(request))
    async with dash.db.connection() as conn:
        result = await _admin.cancel_jobs_async(conn, queue=queue, task=task, by=f"api:{who.name}")
    dash.action(who, "jobs.cancel_queued", queue=queue, task=task, jobs=result.total)
    return ApiResponse({"jobs": result.total, "per_queue": result.per_queue})


def _bulk_filters(data: dict[str, Any]) -> tuple[str | None, str | None]:
    unknown = sorted(set(data) - {"queue", "task"})
    if unknown:
        raise HttpError(422, f"unknown field(s) {', '.join(unknown)}; allowed: queue, task")
    try:
        queue = _http.text_field(data.get("queue"), "queue", max_length=128)
        task = _http.text_field(data.get("task"), "task")
    except HttpError as exc:
        raise HttpError(422, exc.message) from None
    if queue is None and task is None:
        raise HttpError(
            422, "give a queue and/or a task, so a bulk action never hits every job by accident"
        )
    return queue, task


def _admin_request(request: Request) -> Principal:
    _auth.check_origin(request)
    who = _dash(request).require(request, "admin")
    _check_browser_intent(request, who)
    return who


def _check_browser_intent(request: Request, who: Principal) -> None:
    """Refuse a state change a browser may have sent without its user meaning to.

    A browser attaches the session cookie (and reaches a tokenless loopback
    dashboard) on requests that any page it shows can start: a cross-site
    form, or one whose Origin is `null`. A bearer token is only ever sent
    by a client that holds it, so bearer calls need none of this.

    Raises:
        HttpError: 403.
    """
    if who.via == "token":
        return
    origin = request.headers.get("origin")
    host = request.headers.get("host", "")
    from_here = origin is not None and _http.same_origin(origin, host, request.url.scheme)
    if who.via == "anonymous":
        if origin is not None and not from_here:
            raise HttpError(
                403,
                f"a browser page at {origin[:100]} may not change anything here; tools that "
                "send no Origin header may",
            )
    else:  # the session cookie, or any other credential a browser sends by itself
        if not from_here:
            raise HttpError(
                403,
                "a change through the API with the session cookie must come from this "
                "dashboard's own origin and carry the X-CSRF-Token header; scripts and "
                "services should send `Authorization: Bearer TOKEN` instead",
            )
        try:
            _auth.check_csrf(request, request.headers.get(CSRF_HEADER))
        except HttpError:
            raise HttpError(
                403,
                "the X-CSRF-Token header is missing or does not match this session's "
                "CSRF token (the csrf_token field of the dashboard's forms)",
            ) from None


# -- stats, queues, workers, schedules -------------------------------------


async def stats(request: Request) -> Response:
    """GET /stats: queues, workers, the leader and finished jobs over time
    (`?range=1h|24h|7d&queue=&task=`, the last hour by default)."""
    dash = _dash(request)
    dash.require(request)
    rng, queue, task = _http.chart_query(request.query_params)
    async with dash.db.connection() as conn:
        queues = await _queries.queues(conn)
        workers = await _queries.workers(conn)
        leader = await _queries.leader(conn, workers)
        buckets = await _queries.throughput(conn, rng, queue=queue, task=task)
    live = sum(1 for w in workers if w["heartbeat_age"] <= dash.stale_after)
    return ApiResponse(
        {
            "queues": [q.as_json() for q in queues],
            "workers": {"live": live, "registered": len(workers)},
            "leader": leader.as_json(),
            "range": rng.name,
            "bucket_seconds": rng.step,
            # "minute" names the start of each bar, whatever its width.
            "throughput": [
                {
                    "minute": b.at,
                    "succeeded": b.succeeded,
                    "failed": b.failed,
                    "cancelled": b.cancelled,
                }
                for b in buckets
            ],
        }
    )


async def list_queues(request: Request) -> Response:
    """GET /queues."""
    dash = _dash(request)
    dash.require(request)
    async with dash.db.connection() as conn:
        queues = await _queries.queues(conn)
    return ApiResponse({"queues": [q.as_json() for q in queues]})


async def pause_queue(request: Request) -> Response:
    """POST /queues/{name}/pause."""
    return await _set_paused(request, True)


async def resume_queue(request: Request) -> Response:
    """POST /queues/{name}/resume."""
    return await _set_paused(request, False)


async def _set_paused(request: Request, paused: bool) -> Response:
    dash = _dash(request)
    who = _admin_request(request)
    name = queue_name(request.path_params["name"])
    await read_empty_body(request)
    async with dash.db.connection() as conn:
        await require_known_queue(dash, conn, name)
        await _queries.set_paused(conn, name, paused)
    dash.action(who, "queue.pause" if paused else "queue.resume", queue=name)
    return ApiResponse({"name": name, "paused": paused})


async def set_limits(request: Request) -> Response:
    """PATCH /queues/{name}: change some of a queue's limits (null: no limit)."""
    dash = _dash(request)
    who = _admin_request(request)
    name = queue_name(request.path_params["name"])
    changes = await read_json_object(request)
    if not changes:
        raise HttpError(422, f"give at least one limit to change: {', '.join(_queue.LIMITS)}")
    async with dash.db.connection() as conn:
        await require_known_queue(dash, conn, name)
        limits = _queue.changed(await _queries.queue_limits(conn, name), changes)
        await _queries.set_limits(conn, limits)
    dash.action(who, "queue.limits", queue=name, **{k: getattr(limits, k) for k in changes})
    return ApiResponse({"name": name, **{k: getattr(limits, k) for k in _queue.LIMITS}})


async def require_known_queue(dash: Dashboard, conn: Any, name: str) -> None:
    """Refuse to change a queue that neither the App nor the database knows.

    Raises:
        HttpError: 404, naming the queue: a typo would otherwise create a
            settings row for a queue that nothing uses.
    """
    declared = set(dash.app.queues) | {task.defaults.queue for task in dash.app.tasks.values()}
    if not await _queries.queue_known(conn, name, declared):
        raise HttpError(
            404,
            f"no queue named {name!r}: it has no settings, no live worker serves it and no "
            "job waits or runs in it; check the name on the queues page",
        )


async def list_breakers(request: Request) -> Response:
    """GET /breakers: every circuit breaker and its state."""
    dash = _dash(request)
    dash.require(request)
    async with dash.db.connection() as conn:
        found = await _queries.breakers(conn)
    return ApiResponse({"breakers": [_queries.breaker_json(row) for row in found]})


def queue_name(text: str) -> str:
    """A queue name from a path segment."""
    name = _http.text_field(text, "queue name", max_length=128)
    if name is None:
        raise _http.bad_request("the queue name is empty")
    return name


async def list_workers(request: Request) -> Response:
    """GET /workers."""
    dash = _dash(request)
    dash.require(request)
    async with dash.db.connection() as conn:
        workers = await _queries.workers(conn)
        leader = await _queries.leader(conn, workers)
    for w in workers:
        w["alive"] = w["heartbeat_age"] <= dash.stale_after
    return ApiResponse({"workers": workers, "leader": leader.as_json()})


async def list_schedules(request: Request) -> Response:
    """GET /schedules: empty with available false before the cron schema exists."""
    dash = _dash(request)
    found = await dash.schedules(dash.require(request))
    return ApiResponse({"available": found is not None, "schedules": found or []})


async def run_schedule(request: Request) -> Response:
    """POST /schedules/{name}/run: enqueue one job of the schedule now."""
    dash = _dash(request)
    who = _admin_request(request)
    name = _http.text_field(request.path_params["name"], "schedule name", max_length=200)
    if name is None:
        raise _http.bad_request("the schedule name is empty")
    await read_empty_body(request)
    async with dash.db.connection() as conn:
        job_id = await _queries.run_schedule_now(conn, name, who.name)
    dash.action(who, "schedule.run_now", schedule=name, job_id=job_id)
    if job_id is None:
        raise HttpError(409, f"schedule {name!r}: an active job already holds its fingerprint")
    return ApiResponse({"schedule": name, "job_id": job_id}, status_code=201)


async def openapi(request: Request) -> Response:
    """GET /openapi.json."""
    from pgjobs.web._openapi import spec

    # A path, never the Host header's name: a request cannot choose where clients go.
    return ApiResponse(spec(request.url_for("healthz").path.removesuffix("/healthz")))


def routes() -> list[BaseRoute]:
    """The API's routes, relative to /api/v1."""
    return [
        Route("/openapi.json", openapi, name="openapi"),
        Route("/jobs", list_jobs, methods=["GET"], name="api_jobs"),
        Route("/jobs", submit_job, methods=["POST"]),
        Route("/jobs/retry-failed", bulk_retry, methods=["POST"]),
        Route("/jobs/cancel-queued", bulk_cancel, methods=["POST"]),
        Route("/jobs/{id}", get_job, methods=["GET"]),
        Route("/jobs/{id}", delete_job, methods=["DELETE"]),
        Route("/jobs/{id}/retry", retry_job, methods=["POST"]),
        Route("/jobs/{id}/cancel", cancel_job, methods=["POST"]),
        Route("/stats", stats, methods=["GET"]),
        Route("/queues", list_queues, methods=["GET"]),
        Route("/queues/{name:path}/pause", pause_queue, methods=["POST"]),
        Route("/queues/{name:path}/resume", resume_queue, methods=["POST"]),
        Route("/queues/{name:path}", set_limits, methods=["PATCH"]),
        Route("/breakers", list_breakers, methods=["GET"]),
        Route("/workers", list_workers, methods=["GET"]),
        Route("/schedules", list_schedules, methods=["GET"]),
        Route("/schedules/{name:path}/run", run_schedule, methods=["POST"]),
    ]
