"""Server-rendered pages: overview, jobs, job detail, queues, workers, schedules, login."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pgjobs import _admin, _queue
from pgjobs._queue import LIMITS
from pgjobs._routing import is_pattern
from pgjobs.errors import InvalidTransitionError, JobNotFoundError
from pgjobs.web import _api, _auth, _chart, _http, _queries, _traceback
from pgjobs.web._auth import Principal
from pgjobs.web._dashboard import Dashboard, path_for, read_body, utc
from pgjobs.web._http import HttpError

#: Outcome messages a redirect may ask for (`?done=CODE&n=N`): fixed texts, so
#: a crafted link cannot make the page say anything else.
_DONE = {
    "retried": "Job put back in line.",
    "copied": "Enqueued as a copy: this is the new job {n}.",
    "cancelled": "Job cancelled.",
    "deleted": "Job deleted.",
    "bulk_retried": "Failed jobs retried: {n}.",
    "selected_retried": "Jobs put back in line: {n}.",
    "selected_cancelled": "Jobs cancelled, or asked to stop while they run: {n}.",
    "selected_deleted": "Jobs deleted: {n}.",
    "bulk_cancelled": "Jobs cancelled, or asked to stop while they run: {n}.",
    "paused": "Queue paused: workers stop claiming from it.",
    "resumed": "Queue resumed.",
    "limits_set": "Queue limits set: the next claims keep to them.",
    "ran": "Schedule enqueued as job {n}.",
    "schedule_paused": "Schedule paused: it fires no tick until resumed.",
    "schedule_resumed": "Schedule resumed: it fires from its next tick on.",
    "logged_out": "Logged out.",
    "not_found": "No job with that id.",
}


def _dash(request: Request) -> Dashboard:
    dash: Dashboard = request.app.state.dashboard
    return dash


def _flash(request: Request) -> str | None:
    template = _DONE.get(request.query_params.get("done", ""))
    n = request.query_params.get("n", "")
    return template.format(n=n if n.isdigit() else "?") if template else None


def render(
    request: Request,
    template: str,
    who: Principal | None,
    nav: str,
    status_code: int = 200,
    **context: Any,
) -> Response:
    """A page, with its session's CSRF token; a visitor's id is set in a cookie if needed."""
    dash = _dash(request)
    visitor = None
    csrf = dash.auth.csrf_token(request)
    if csrf is None:
        visitor = _auth.new_csrf_token()
        csrf = dash.auth.csrf_for("visitor:" + visitor)
    response = dash.templates.TemplateResponse(
        request,
        template,
        {
            "dash": dash,
            "who": who,
            "csrf": csrf,
            "nav": nav,
            "flash": _flash(request),
            **context,
        },
        status_code=status_code,
    )
    if visitor is not None:
        response.set_cookie(
            _auth.CSRF_COOKIE,
            visitor,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=request.scope.get("root_path", "") or "/",
        )
    return response


def _redirect(request: Request, name: str, done: str, n: object = "", **params: Any) -> Response:
    url = path_for(request, name, **params).include_query_params(done=done, n=n)
    return RedirectResponse(str(url), status_code=303)


async def _form(request: Request, who_role: str = "admin") -> tuple[Principal, FormData]:
    """An admin's form POST: authenticated, same-origin, with a matching CSRF token."""
    dash = _dash(request)
    body = await read_body(request)
    del body  # read once under the size limit; request.form() reuses it
    form = await request.form()
    _auth.check_csrf(request, form.get(_auth.CSRF_FIELD))
    who = dash.require(request, who_role)
    return who, form


def _confirmed(form: FormData) -> bool:
    return form.get("confirm") == "yes"


def _confirm_page(
    request: Request, who: Principal, form: FormData, question: str, action: str
) -> Response:
    # Pairs, not a dict: a list of ticked jobs sends `ids` many times.
    hidden = [(k, v) for k, v in form.multi_items() if k not in (_auth.CSRF_FIELD, "confirm")]
    return render(
        request,
        "confirm.html",
        who,
        "",
        question=question,
        action=action,
        hidden=hidden,
    )


# -- overview --------------------------------------------------------------


async def overview(request: Request) -> Response:
    """Queues, finished jobs over time (`?range=1h|24h|7d&queue=&task=`), workers, the leader."""
    dash = _dash(request)
    who = dash.require(request)
    rng, chart_queue, chart_task = _http.chart_query(request.query_params)
    async with dash.db.connection() as conn:
        queues = await _queries.queues(conn)
        buckets = await _queries.throughput(conn, rng, queue=chart_queue, task=chart_task)
        workers = await _queries.workers(conn)
        leader = await _queries.leader(conn, workers)
    live = [w for w in workers if w["heartbeat_age"] <= dash.stale_after]
    return render(
        request,
        "overview.html",
        who,
        "overview",
        queues=queues,
        chart=_chart.geometry(buckets, rng),
        chart_queue=chart_queue,
        chart_task=chart_task,
        ranges=_chart.RANGES,
        workers=live,
        registered=len(workers),
        leader=leader,
    )


# -- jobs ------------------------------------------------------------------


async def jobs(request: Request) -> Response:
    """The filtered, paged jobs list, with bulk actions."""
    dash = _dash(request)
    who = dash.require(request)
    params = dict(request.query_params)
    search = _http.text_field(params.pop("q", None), "search", max_length=1000)
    if search is not None:
        if search.isdigit():
            job_id = _http.job_id(search)
            async with dash.db.connection() as conn:
                try:
                    await _admin.get_job_async(conn, job_id)
                except JobNotFoundError:
                    return _redirect(request, "jobs", "not_found")
            return RedirectResponse(str(path_for(request, "job", id=str(job_id))), status_code=303)
        params["fingerprint"] = search
    query = _http.job_query(params)
    page, following = await _api.list_page(dash, query)
    async with dash.db.connection() as conn:
        counted = query.fingerprint is None and query.args is None and query.error is None
        count = await _queries.count_jobs(conn, query.filter) if counted else None
        tabs = await _queries.state_counts(conn, queue=query.queue, task=query.task)
        queue_names = [q.name for q in await _queries.queues(conn)]
        # A pattern ("reports.*") is no job's name: the jobs it serves are listed by theirs.
        registered = {name for name in dash.app.tasks if not is_pattern(name)}
        task_names = sorted(registered | set(await _queries.task_names(conn)))
    base = path_for(request, "jobs")
    return render(
        request,
        "jobs.html",
        who,
        "jobs",
        query=query,
        jobs=page,
        count=count,
        states=_admin.STATES,
        tabs=[
            {
                "label": name or "all",
                "count": tabs.get(name),
                "active": (query.status or "") == name,
                "url": str(base.include_query_params(**_with_status(query.links(), name))),
            }
            for name in ("", *_TABS)
        ],
        orders=_http.ORDERS,
        now=dt.datetime.now(dt.UTC),
        queue_names=queue_names,
        task_names=task_names,
        next_url=str(base.include_query_params(**query.links(), cursor=following))
        if following
        else None,
        first_url=str(base.include_query_params(**query.links())) if query.before_id else None,
    )


def _with_status(links: dict[str, str], status: str) -> dict[str, str]:
    out = {k: v for k, v in links.items() if k != "status"}
    return {**out, "status": status} if status else out


#: The jobs list's tabs, in the order a job goes through them.
_TABS = (
    "queued",
    "scheduled",
    "retrying",
    "blocked",
    "running",
    "succeeded",
    "failed",
    "cancelled",
)


async def job(request: Request) -> Response:
    """One job: args, meta, result, errors with tracebacks, timeline, actions."""
    dash = _dash(request)
    who = dash.require(request)
    job_id = _http.job_id(request.path_params["id"])
    async with dash.db.connection() as conn:
        detail = await _admin.get_job_async(conn, job_id)
        flow = await _queries.workflow(conn, job_id)
    data = dash.job_json(detail, who)
    timeline: list[tuple[str, Any]] = [
        ("created", detail.job.created_at),
        ("due", detail.job.run_at),
    ]
    if detail.job.started_at:
        timeline.append(("last started", detail.job.started_at))
    for error in detail.job.errors:
        at = utc(error.get("at"))
        timeline.append((f"attempt {error.get('attempt', '?')} failed", at))
    if detail.job.finished_at:
        timeline.append((detail.job.status.value, detail.job.finished_at))
    # Stable: at equal times, the order above (created, due, started, ...) stands.
    timeline.sort(key=lambda item: item[1] or dt.datetime.max.replace(tzinfo=dt.UTC))
    return render(
        request,
        "job.html",
        who,
        "jobs",
        job=data,
        timeline=timeline,
        workflow=flow,
        attempts=_attempts(detail),
        traceback_blocks=_traceback.blocks,
        pretty=lambda v: json.dumps(v, indent=2, ensure_ascii=False, default=str),
        can_retry=detail.job.status.value in ("failed", "cancelled", "queued"),
        can_cancel=detail.job.status.value in ("queued", "running"),
        can_delete=detail.job.status.value != "running",
    )


def _attempts(detail: _admin.JobDetail) -> list[dict[str, Any]]:
    """Each attempt of a job: its outcome, worker, start and duration, oldest first.

    Failed attempts come from the job's errors (worker and start are recorded
    there since migration 0019's release; older entries lack them); the last
    attempt, when it succeeded, was cancelled or is running, from the job's row.
    """
    job = detail.job
    out = []
    for error in job.errors:
        started, ended = utc(error.get("started_at")), utc(error.get("at"))
        out.append(
            {
                "attempt": error.get("attempt"),
                "outcome": error.get("type") or "error",
                "failed": True,
                "worker_id": error.get("worker_id"),
                "started_at": started,
                "seconds": (ended - started).total_seconds() if started and ended else None,
            }
        )
    status = job.status.value
    if status in ("succeeded", "cancelled", "running") and job.started_at is not None:
        ended = job.finished_at or dt.datetime.now(dt.UTC)
        out.append(
            {
                "attempt": job.attempts,
                "outcome": status,
                "failed": False,
                "worker_id": job.worker_id,
                "started_at": job.started_at,
                "seconds": (ended - job.started_at).total_seconds(),
            }
        )
    return out


async def job_copy(request: Request) -> Response:
    """POST /jobs/{id}/copy: enqueue a new job like this one, with the args edited (admin)."""
    dash = _dash(request)
    who, form = await _form(request)
    job_id = _http.job_id(request.path_params["id"])
    text = form.get("args")
    if not isinstance(text, str) or not text.strip():
        raise _http.bad_request("args must be a JSON object; send {} for none")
    args = _http.parse_json_object(text.encode("utf-8"))
    async with dash.db.connection() as conn:
        original = (await _admin.get_job_async(conn, job_id)).job
        spec = dash.app.job(
            original.task,
            args,
            queue=original.queue,
            priority=original.priority,
            max_attempts=original.max_attempts,
            meta={"copied_from": job_id, "submitted_by": who.name, "via": "pgjobs-dashboard"},
        )
        new_id = await _admin.enqueue_async(conn, spec)
    if new_id is None:
        raise HttpError(409, "an active job already holds this job's fingerprint")
    dash.action(who, "job.copy", job_id=job_id, new_job_id=new_id)
    return _redirect(request, "job", "copied", new_id, id=str(new_id))


async def job_action(request: Request) -> Response:
    """POST /jobs/{id}/{action}: retry, cancel or delete, after a confirmation."""
    dash = _dash(request)
    who, form = await _form(request)
    job_id = _http.job_id(request.path_params["id"])
    action = request.path_params["action"]
    if action not in ("retry", "cancel", "delete"):
        raise HttpError(404, f"unknown action {action[:30]!r}; use retry, cancel or delete")
    if not _confirmed(form):
        return _confirm_page(
            request, who, form, f"{action.capitalize()} job {job_id}?", request.url.path
        )
    async with dash.db.connection() as conn:
        if action == "retry":
            await _admin.retry_job_async(conn, job_id)
        elif action == "cancel":
            await _admin.cancel_job_async(conn, job_id, by=f"dashboard:{who.name}")
        else:
            await _queries.delete_job(conn, job_id)
    dash.action(who, f"job.{action}", job_id=job_id)
    if action == "delete":
        return _redirect(request, "jobs", "deleted")
    return _redirect(
        request, "job", "retried" if action == "retry" else "cancelled", id=str(job_id)
    )


async def bulk(request: Request) -> Response:
    """POST /jobs/bulk/{action}: retry a task's failed jobs, or cancel a queue's queued jobs."""
    dash = _dash(request)
    who, form = await _form(request)
    action = request.path_params["action"]
    task = _http.text_field(form.get("task"), "task")
    queue = _http.text_field(form.get("queue"), "queue", max_length=128)
    if action == "retry-failed":
        if task is None:
            raise _http.bad_request("choose the task whose failed jobs to retry")
        question = f"Retry every failed job of task {task}" + (
            f" in queue {queue}?" if queue else "?"
        )
    elif action == "cancel-queued":
        if queue is None:
            raise _http.bad_request("choose the queue whose queued jobs to cancel")
        question = f"Cancel every queued job of queue {queue}, and stop its running ones" + (
            f" for task {task}?" if task else "?"
        )
    else:
        raise HttpError(404, "unknown bulk action; use retry-failed or cancel-queued")
    if not _confirmed(form):
        return _confirm_page(request, who, form, question, request.url.path)
    async with dash.db.connection() as conn:
        if action == "retry-failed":
            result = await _admin.retry_jobs_async(conn, status="failed", queue=queue, task=task)
        else:
            by = f"dashboard:{who.name}"
            result = await _admin.cancel_jobs_async(conn, queue=queue, task=task, by=by)
    name = "jobs.retry_failed" if action == "retry-failed" else "jobs.cancel_queued"
    dash.action(who, name, queue=queue, task=task, jobs=result.total)
    done = "bulk_retried" if action == "retry-failed" else "bulk_cancelled"
    return _redirect(request, "jobs", done, result.total)


#: The most jobs one "selected" action takes (a page is at most this long).
MAX_SELECTED = 500


async def selected(request: Request) -> Response:
    """POST /jobs/selected/{retry|cancel|delete}: the ticked jobs, or all that match a filter.

    With `scope=matching`, the action applies to every job that the list's
    status, queue and task filters match (a search in args or errors is
    refused: the bulk statements take only those three). Otherwise to the
    `ids` ticked, each on its own; a job whose state does not allow the
    action (a running job to delete, a succeeded one to cancel) is skipped.
    """
    dash = _dash(request)
    who, form = await _form(request)
    action = request.path_params["action"]
    if action not in ("retry", "cancel", "delete"):
        raise HttpError(404, "unknown action; use retry, cancel or delete")
    if form.get("scope") == "matching":
        return await _act_on_matching(request, who, form, action)
    ids = [_http.job_id(str(v)) for v in form.getlist("ids")]
    if not ids:
        raise _http.bad_request("tick at least one job, or choose all matching this filter")
    if len(ids) > MAX_SELECTED:
        raise _http.bad_request(f"at most {MAX_SELECTED} jobs at once; use all matching")
    if not _confirmed(form):
        question = f"{action.capitalize()} {len(ids)} selected job{'s' if len(ids) > 1 else ''}?"
        return _confirm_page(request, who, form, question, request.url.path)
    done = 0
    async with dash.db.connection() as conn:
        for job_id in ids:
            try:
                if action == "retry":
                    await _admin.retry_job_async(conn, job_id)
                elif action == "cancel":
                    await _admin.cancel_job_async(conn, job_id, by=f"dashboard:{who.name}")
                else:
                    await _queries.delete_job(conn, job_id)
            except (JobNotFoundError, InvalidTransitionError):
                continue
            done += 1
    dash.action(who, f"jobs.{action}_selected", job_ids=ids, done=done)
    return _redirect(request, "jobs", f"selected_{_PAST[action]}", done)


_PAST = {"retry": "retried", "cancel": "cancelled", "delete": "deleted"}


async def _act_on_matching(
    request: Request, who: Principal, form: FormData, action: str
) -> Response:
    dash = _dash(request)
    query = _http.job_query({k: str(v) for k, v in form.items() if k in _FILTER_FIELDS})
    if query.args is not None or query.error is not None or query.fingerprint is not None:
        raise _http.bad_request(
            "all matching takes the status, queue and task filters only; "
            "tick the jobs of a search instead"
        )
    status, queue, task = query.status, query.queue, query.task
    if action == "retry" and status not in _admin.RETRYABLE:
        raise _http.bad_request("retry all matching needs the failed or cancelled tab")
    if action == "delete" and status not in ("succeeded", "failed", "cancelled"):
        raise _http.bad_request(
            "delete all matching needs a finished tab: succeeded, failed or cancelled"
        )
    if action == "cancel" and status is not None:
        raise _http.bad_request(
            "cancel all matching takes every active job (queued, blocked or running) "
            "of the queue and task: use the All tab"
        )
    if action == "cancel" and queue is None and task is None:
        raise _http.bad_request("cancel all matching needs a queue or a task filter")
    scope = " ".join(
        part
        for part in (
            f"{status}" if status else "active" if action == "cancel" else "",
            "job of",
            f"queue {queue}" if queue else "every queue",
            f"and task {task}" if task else "",
        )
        if part
    )
    if not _confirmed(form):
        question = f"{action.capitalize()} every {scope}?"
        if action == "cancel":
            question += " Running ones are asked to stop."
        return _confirm_page(request, who, form, question, request.url.path)
    async with dash.db.connection() as conn:
        # status is one of RETRYABLE, or a finished one, as checked above.
        if action == "retry":
            retried = await _admin.retry_jobs_async(
                conn, status=str(status), queue=queue, task=task
            )
            done = retried.total
        elif action == "cancel":
            by = f"dashboard:{who.name}"
            done = (await _admin.cancel_jobs_async(conn, queue=queue, task=task, by=by)).total
        else:
            done = await _queries.delete_finished(conn, status=str(status), queue=queue, task=task)
    dash.action(who, f"jobs.{action}_matching", status=status, queue=queue, task=task, jobs=done)
    return _redirect(request, "jobs", f"selected_{_PAST[action]}", done)


_FILTER_FIELDS = ("status", "queue", "task", "args", "error", "fingerprint")


# -- queues, workers, schedules --------------------------------------------


async def queues(request: Request) -> Response:
    """Queues with pause and resume, their limits (admins edit them), and circuit breakers."""
    dash = _dash(request)
    who = dash.require(request)
    async with dash.db.connection() as conn:
        found = await _queries.queues(conn)
        breakers = await _queries.breakers(conn)
    return render(
        request, "queues.html", who, "queues", queues=found, breakers=breakers, limits=LIMITS
    )


async def queue_action(request: Request) -> Response:
    """POST /queues/{name}/{pause|resume|limits}."""
    dash = _dash(request)
    who, form = await _form(request)
    name = _api.queue_name(request.path_params["name"])
    action = request.path_params["action"]
    if action == "limits":
        return await _queue_limits(request, who, form, name)
    if action not in ("pause", "resume"):
        raise HttpError(404, "unknown queue action; use pause, resume or limits")
    async with dash.db.connection() as conn:
        await _api.require_known_queue(dash, conn, name)
        await _queries.set_paused(conn, name, action == "pause")
    dash.action(who, f"queue.{action}", queue=name)
    return _redirect(request, "queues", "paused" if action == "pause" else "resumed")


async def _queue_limits(request: Request, who: Principal, form: FormData, name: str) -> Response:
    """The queues page's limits form: every limit at once, an empty field for no limit."""
    dash = _dash(request)
    changes: dict[str, object] = {}
    for field in LIMITS:
        text = _http.text_field(form.get(field), field, max_length=32)
        changes[field] = _limit_value(field, text)
    async with dash.db.connection() as conn:
        await _api.require_known_queue(dash, conn, name)
        limits = _queue.changed(await _queries.queue_limits(conn, name), changes)
        if not _confirmed(form):
            said = ", ".join(
                f"{field} {getattr(limits, field)}"
                for field in LIMITS
                if getattr(limits, field) is not None
            )
            question = f"Set the limits of queue {name} to " + (said or "none") + "?"
            return _confirm_page(request, who, form, question, request.url.path)
        await _queries.set_limits(conn, limits)
    dash.action(who, "queue.limits", queue=name, **{f: getattr(limits, f) for f in LIMITS})
    return _redirect(request, "queues", "limits_set")


def _limit_value(field: str, text: str | None) -> object:
    """A limit from a form field: None for an empty one, an integer for a count."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    if field.endswith("rate_limit"):
        return text
    try:
        return int(text)
    except ValueError:
        # app.queue's checks word the refusal (a positive integer).
        return text


async def workers(request: Request) -> Response:
    """Workers: host, pid, queues, heartbeat age, running jobs."""
    dash = _dash(request)
    who = dash.require(request)
    async with dash.db.connection() as conn:
        found = await _queries.workers(conn)
        leader = await _queries.leader(conn, found)
    return render(request, "workers.html", who, "workers", workers=found, leader=leader)


async def schedules(request: Request) -> Response:
    """Schedules, or a note when the cron schema is not there."""
    dash = _dash(request)
    who = dash.require(request)
    found = await dash.schedules(who)
    return render(request, "schedules.html", who, "schedules", schedules=found)


async def schedule_pause(request: Request) -> Response:
    """POST /schedules/{name}/pause: the schedule fires no tick until resumed."""
    return await _schedule_paused(request, "pause")


async def schedule_resume(request: Request) -> Response:
    """POST /schedules/{name}/resume: the schedule fires again, from its next tick on."""
    return await _schedule_paused(request, "resume")


async def _schedule_paused(request: Request, action: str) -> Response:
    dash = _dash(request)
    who, _ = await _form(request)
    name = _http.text_field(request.path_params["name"], "schedule name", max_length=200) or ""
    async with dash.db.connection() as conn:
        await _queries.set_schedule_paused(conn, name, action == "pause")
    dash.action(who, f"schedule.{action}", schedule=name)
    return _redirect(
        request, "schedules", "schedule_paused" if action == "pause" else "schedule_resumed"
    )


async def schedule_run(request: Request) -> Response:
    """POST /schedules/{name}/run."""
    dash = _dash(request)
    who, form = await _form(request)
    name = _http.text_field(request.path_params["name"], "schedule name", max_length=200) or ""
    if not _confirmed(form):
        # Not request.url.path: that is decoded, and a name with `/../` in it
        # would post the confirmation to another schedule's URL.
        action = request.url_for("schedule_run", name=_auth.path_segment(name)).path
        return _confirm_page(request, who, form, f"Run schedule {name} now?", action)
    async with dash.db.connection() as conn:
        job_id = await _queries.run_schedule_now(conn, name, who.name)
    dash.action(who, "schedule.run_now", schedule=name, job_id=job_id)
    if job_id is None:
        raise HttpError(409, f"schedule {name!r}: an active job already holds its fingerprint")
    return _redirect(request, "schedules", "ran", job_id)


# -- login -----------------------------------------------------------------


async def login(request: Request) -> Response:
    """GET: the login form. POST: check the token and set the session cookie."""
    dash = _dash(request)
    next_url = _safe_next(request, request.query_params.get("next"))
    if request.method == "GET":
        return render(request, "login.html", None, "", next_url=next_url, failed=False)
    await read_body(request)
    form = await request.form()
    _auth.check_csrf(request, form.get(_auth.CSRF_FIELD))
    dash.auth.throttle(request, "form")
    secret = form.get("token")
    value = dash.auth.session_value(secret) if isinstance(secret, str) and secret else None
    if value is None:
        dash.auth.failed(request, "form")
        return render(request, "login.html", None, "", 401, next_url=next_url, failed=True)
    dash.auth.succeeded(request)
    who = dash.auth.from_token(str(secret))
    if who is None:  # session_value above accepted the same token
        raise RuntimeError("a token accepted for a session has no principal")
    dash.log.info("dashboard.login", who=who.name, role=who.role)
    target = _safe_next(request, form.get("next") if isinstance(form.get("next"), str) else None)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        _auth.SESSION_COOKIE,
        value,
        max_age=_auth.SESSION_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path=request.scope.get("root_path", "") or "/",
    )
    return response


async def logout(request: Request) -> Response:
    """POST: revoke the session (a copy of its cookie stops working) and delete the cookie."""
    dash = _dash(request)
    await read_body(request)
    form = await request.form()
    _auth.check_csrf(request, form.get(_auth.CSRF_FIELD))
    who = dash.auth.revoke(request)
    if who is not None:
        dash.log.info("dashboard.logout", who=who.name, role=who.role)
    response = _redirect(request, "login", "logged_out")
    response.delete_cookie(_auth.SESSION_COOKIE, path=request.scope.get("root_path", "") or "/")
    return response


def _safe_next(request: Request, target: object) -> str:
    """Only a path inside the dashboard: never an open redirect."""
    root = str(path_for(request, "overview"))
    if isinstance(target, str) and target.startswith("/") and not target.startswith("//"):
        prefix = request.scope.get("root_path", "")
        if target.startswith(prefix or "/") and "\\" not in target:
            return target
    return root


def routes() -> list[BaseRoute]:
    """The pages' routes."""
    return [
        Route("/", overview, name="overview"),
        Route("/jobs", jobs, name="jobs"),
        Route("/jobs/bulk/{action}", bulk, methods=["POST"], name="bulk"),
        Route("/jobs/selected/{action}", selected, methods=["POST"], name="selected"),
        Route("/jobs/{id}", job, name="job"),
        Route("/jobs/{id}/copy", job_copy, methods=["POST"], name="job_copy"),
        Route("/jobs/{id}/{action}", job_action, methods=["POST"], name="job_action"),
        Route("/queues", queues, name="queues"),
        Route("/queues/{name:path}/{action}", queue_action, methods=["POST"], name="queue_action"),
        Route("/workers", workers, name="workers"),
        Route("/schedules", schedules, name="schedules"),
        Route("/schedules/{name:path}/run", schedule_run, methods=["POST"], name="schedule_run"),
        Route(
            "/schedules/{name:path}/pause", schedule_pause, methods=["POST"], name="schedule_pause"
        ),
        Route(
            "/schedules/{name:path}/resume",
            schedule_resume,
            methods=["POST"],
            name="schedule_resume",
        ),
        Route("/login", login, methods=["GET", "POST"], name="login"),
        Route("/logout", logout, methods=["POST"], name="logout"),
    ]
