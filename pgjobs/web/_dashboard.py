"""The Dashboard every route receives, and the request and response plumbing routes share."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import importlib.resources
import json
from pathlib import Path
from typing import Any

import jinja2
import psycopg
from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.templating import Jinja2Templates

from pgjobs import _log
from pgjobs._admin import JobDetail
from pgjobs._app import App
from pgjobs.errors import (
    ArgumentsError,
    ConfigurationError,
    DatabaseUnavailableError,
    DuplicateJobError,
    InvalidTransitionError,
    JobNotFoundError,
    PgjobsError,
    SchemaVersionError,
    UnknownTaskError,
)
from pgjobs.web import _auth, _http, _queries
from pgjobs.web._auth import Auth, Principal
from pgjobs.web._db import Database
from pgjobs.web._http import MAX_BODY_BYTES, HttpError


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def utc(value: object) -> dt.datetime | None:
    """A timestamp (a datetime, or ISO 8601 text as stored in jobs.errors) in UTC; else None."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, dt.datetime):
        return None
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


def path_only(url: URL) -> URL:
    """`url` without its scheme and host: a path (under root_path) and query.

    Starlette builds absolute URLs from the request's Host header, which the
    client chooses; links and redirects made of paths stay on whatever site
    the browser is already on.
    """
    return URL(url.path + (f"?{url.query}" if url.query else ""))


def path_for(request: Request, name: str, /, **params: Any) -> URL:
    """The path of the route `name`, as `request.url_for` gives it but without the host."""
    return path_only(request.url_for(name, **params))


@jinja2.pass_context
def _template_path_for(context: Any, name: str, /, **params: Any) -> URL:
    return path_for(context["request"], name, **params)


class ApiResponse(JSONResponse):
    """JSON with timestamps as ISO 8601 strings."""

    def render(self, content: Any) -> bytes:
        """Encode `content`."""
        return json.dumps(
            content, default=_json_default, ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")


class Dashboard:
    """What every request handler shares: the App, the database, auth and templates.

    Args:
        app: the pgjobs App whose tasks may be submitted.
        db: the dashboard's connection pool.
        auth: who may do what.
        redact_keys: args keys hidden from viewers (substring match).
        refresh_seconds: how often pages refresh themselves (0: never).
        stale_after: seconds without a heartbeat after which a worker is shown as dead.
        title: shown in the page header.
    """

    def __init__(
        self,
        app: App,
        db: Database,
        auth: Auth,
        *,
        redact_keys: tuple[str, ...],
        refresh_seconds: float,
        stale_after: float,
        title: str,
    ) -> None:
        self.app = app
        self.db = db
        self.auth = auth
        self.redact_keys = tuple(k.lower().replace("-", "_") for k in redact_keys)
        self.refresh_seconds = refresh_seconds
        self.stale_after = stale_after
        self.title = title
        self.log = _log.get_logger()
        templates_dir = Path(str(importlib.resources.files("pgjobs.web") / "templates"))
        self.templates = Jinja2Templates(directory=templates_dir)
        self.templates.env.filters["utc"] = utc
        self.templates.env.filters["num"] = "{:,}".format
        self.templates.env.filters["segment"] = _auth.path_segment
        self.templates.env.globals["url_for"] = _template_path_for

    # -- who ---------------------------------------------------------------

    def principal(self, request: Request) -> Principal | None:
        """Who sent `request`, or None when unauthenticated (see Auth.identify)."""
        return self.auth.identify(request)

    def require(self, request: Request, role: str = "viewer") -> Principal:
        """The principal, if authenticated and allowed `role`.

        Raises:
            HttpError: 401 unauthenticated, 403 a viewer asking for an admin action.
        """
        principal = self.principal(request)
        if principal is None:
            raise HttpError(
                401,
                "authentication required: send `Authorization: Bearer TOKEN`, or log in",
            )
        if role == "admin" and not principal.is_admin:
            raise HttpError(
                403,
                f"{principal.name} is a viewer; this action needs an admin token",
            )
        return principal

    def action(self, who: Principal, action: str, **fields: Any) -> None:
        """Log an admin action: every change made through the dashboard is attributable."""
        self.log.info("dashboard.action", who=who.name, via=who.via, action=action, **fields)

    # -- output ------------------------------------------------------------

    async def schedules(self, who: Principal) -> list[dict[str, Any]] | None:
        """Every schedule as `who` may see it (args redacted for viewers), or None
        when this database has no schedules table."""
        async with self.db.connection() as conn:
            found = await _queries.schedules(conn)
        if found is not None and not who.is_admin:
            for schedule in found:
                schedule["args"] = _auth.redact(schedule["args"], self.redact_keys)
        return found

    def job_json(self, detail: JobDetail, who: Principal) -> dict[str, Any]:
        """One job as the API returns it; secret-looking args are hidden from viewers."""
        job = detail.job
        data = {
            "id": job.id,
            "queue": job.queue,
            "task": job.task,
            "state": detail.state,
            "status": job.status.value,
            "priority": job.priority,
            "args": job.args,
            "attempts": job.attempts,
            "max_attempts": job.max_attempts,
            "fingerprint": job.fingerprint,
            "worker_id": job.worker_id,
            "run_at": job.run_at,
            "created_at": job.created_at,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
            "errors": job.errors,
            "result": job.result,
            "meta": job.meta,
            "progress": job.progress,
            "snoozes": job.snoozes,
            "cancel_requested_at": job.cancel_requested_at,
            "cancelled_by": job.cancelled_by,
        }
        if not who.is_admin:
            for name in ("args", "meta", "result"):
                data[name] = _auth.redact(data[name], self.redact_keys)
        return data


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refusing it once it passes `limit` bytes.

    Raises:
        HttpError: 413.
    """
    too_big = HttpError(413, f"the request body is larger than {limit:,} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    body = b"".join(chunks)
    # Starlette's own body()/form() read this cache instead of the spent stream.
    request._body = body
    return body


async def read_json_object(request: Request) -> dict[str, Any]:
    """The body of a JSON request: sent as application/json, an object, each key once.

    Raises:
        HttpError: 413 too large, 415 not sent as JSON, 400 not a JSON object
            of Unicode text with unique keys.
    """
    body = await read_body(request)
    _http.check_json_content_type(request.headers.get("content-type"))
    return _http.parse_json_object(body)


async def read_empty_body(request: Request) -> None:
    """The body of an action that takes none: empty, or else JSON (and then ignored).

    Raises:
        HttpError: 413 too large, 415 a body or Content-Type that is not JSON
            (as a cross-site form would send).
    """
    body = await read_body(request)
    if body.strip() or "content-type" in request.headers:
        _http.check_json_content_type(request.headers.get("content-type"))


# What PostgreSQL says when the pgjobs schema is absent or older than this code.
_SCHEMA_ERRORS = (
    psycopg.errors.UndefinedTable,
    psycopg.errors.UndefinedFunction,
    psycopg.errors.UndefinedColumn,
    psycopg.errors.UndefinedObject,
    psycopg.errors.InvalidSchemaName,
)


def as_http_error(exc: Exception) -> HttpError | None:
    """The HTTP form of an error pgjobs or PostgreSQL raised; None for a real bug."""
    if isinstance(exc, HttpError):
        return exc
    if isinstance(exc, JobNotFoundError):
        return HttpError(404, str(exc))
    if isinstance(exc, DuplicateJobError):
        return HttpError(409, str(exc), existing_id=exc.existing_id)
    if isinstance(exc, InvalidTransitionError):
        return HttpError(409, str(exc))
    if isinstance(exc, UnknownTaskError):
        return HttpError(422, str(exc), known_tasks=exc.known)
    if isinstance(exc, ArgumentsError | ConfigurationError):
        return HttpError(422, str(exc))
    if isinstance(exc, SchemaVersionError | DatabaseUnavailableError):
        return HttpError(503, str(exc))
    if isinstance(exc, PgjobsError):
        return HttpError(400, str(exc))
    if isinstance(exc, _SCHEMA_ERRORS):
        return HttpError(
            503,
            f"the pgjobs schema is missing or out of date ({exc.diag.message_primary}); "
            "run `python -m pgjobs migrate`",
        )
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return HttpError(
            503,
            f"the dashboard's database role may not do this ({exc.diag.message_primary}); "
            "grant it access to the pgjobs schema",
        )
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return HttpError(
            503, "the database query took longer than the dashboard's statement timeout"
        )
    if isinstance(exc, psycopg.OperationalError):
        return HttpError(503, "the database connection failed; try again shortly")
    if isinstance(exc, psycopg.DataError):
        return HttpError(422, f"the database refused a value: {exc.diag.message_primary or exc}")
    return None
