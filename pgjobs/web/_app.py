"""The ASGI application factory: routes, error handling, and the state they share."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
import importlib.resources
import json
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import psycopg
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
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
from pgjobs.web import _auth, _queries
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


def _wants_json(request: Request) -> bool:
    path = request.url.path.removeprefix(request.scope.get("root_path", ""))
    return path.startswith(("/api/", "/healthz")) or "text/html" not in request.headers.get(
        "accept", ""
    )


def _error_response(request: Request, error: HttpError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    if _wants_json(request):
        return ApiResponse(error.body(), status_code=error.status, headers=headers)
    dash: Dashboard = request.app.state.dashboard
    if error.status == 401:
        login = request.url_for("login").include_query_params(next=request.url.path)
        return Response(status_code=303, headers={"location": str(login)})
    return dash.templates.TemplateResponse(
        request,
        "error.html",
        {"dash": dash, "error": error, "who": None, "csrf": "", "nav": ""},
        status_code=error.status,
    )


async def _on_error(request: Request, exc: Exception) -> Response:
    error = as_http_error(exc)
    if error is None:
        raise exc
    return _error_response(request, error)


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, StarletteHTTPException):  # registered for that class only
        raise exc
    message = {
        404: "no such page or endpoint; see /api/v1/openapi.json for the API",
        405: "this method is not allowed here; see /api/v1/openapi.json",
    }.get(exc.status_code, str(exc.detail))
    return _error_response(request, HttpError(exc.status_code, message))


async def _on_crash(request: Request, exc: Exception) -> Response:
    dash: Dashboard = request.app.state.dashboard
    dash.log.error("dashboard.error", path=request.url.path, error=repr(exc)[:500])
    error = HttpError(500, "internal error; the server log has the details")
    return ApiResponse(error.body(), status_code=500)


def create_app(
    app: App,
    *,
    dsn: str | None = None,
    tokens: str | Iterable[str] | None = None,
    tokens_file: str | None = None,
    secret_key: str | None = None,
    insecure: bool = False,
    redact_keys: Iterable[str] = _auth.DEFAULT_REDACT_KEYS,
    refresh_seconds: float = 5.0,
    stale_after: float = 30.0,
    statement_timeout_ms: int = 5000,
    connect_timeout: float = 5.0,
    title: str = "pgjobs",
) -> Starlette:
    """The dashboard and HTTP API as an ASGI app, to serve or to mount.

    ```python
    from fastapi import FastAPI
    import pgjobs.web
    from myapp.jobs import app as jobs_app

    api = FastAPI()
    api.mount("/pgjobs", pgjobs.web.create_app(jobs_app))
    ```

    Args:
        app: the pgjobs App: its tasks are the ones the API may submit.
        dsn: the database; default the App's.
        tokens: `role:TOKEN` entries (`name=role:TOKEN` to name the holder in
            logs); default $PGJOBS_DASHBOARD_TOKENS. Roles: viewer, admin.
        tokens_file: a file of such entries, one per line; default
            $PGJOBS_DASHBOARD_TOKENS_FILE.
        secret_key: signs session cookies; default $PGJOBS_DASHBOARD_SECRET,
            else random per process.
        insecure: with no tokens, answer non-loopback requests too (with
            tokens it changes nothing).
        redact_keys: args keys containing any of these words are hidden from viewers.
        refresh_seconds: how often pages refresh themselves; 0 turns it off.
        stale_after: seconds without a heartbeat before a worker counts as dead.
        statement_timeout_ms: the longest a dashboard query may run.
        connect_timeout: seconds a request waits for a database connection
            before it answers 503.
        title: the name in the page header.

    Raises:
        ConfigurationError: malformed tokens.
    """
    from pgjobs.web import _api, _pages

    auth = Auth(_auth.load_tokens(tokens, tokens_file), secret_key=secret_key, insecure=insecure)
    db = Database(
        dsn or app.dsn, statement_timeout=statement_timeout_ms, connect_timeout=connect_timeout
    )
    dash = Dashboard(
        app,
        db,
        auth,
        redact_keys=tuple(redact_keys),
        refresh_seconds=refresh_seconds,
        stale_after=stale_after,
        title=title,
    )
    static = StaticFiles(directory=str(importlib.resources.files("pgjobs.web") / "static"))
    routes: list[BaseRoute] = [
        Route("/healthz", _api.healthz, name="healthz"),
        Mount("/api/v1", routes=_api.routes()),
        Mount("/static", app=static, name="static"),
        *_pages.routes(),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await db.close()

    web = Starlette(
        routes=routes,
        exception_handlers={
            HttpError: _on_error,
            PgjobsError: _on_error,
            psycopg.Error: _on_error,
            StarletteHTTPException: _on_http_exception,
            500: _on_crash,
        },
        lifespan=lifespan,
    )
    web.state.dashboard = dash
    return web
