"""The ASGI application factory: routes, error handling, and the state they share."""

from __future__ import annotations

import contextlib
import importlib.resources
from collections.abc import AsyncIterator, Iterable

import psycopg
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from pgjobs._app import App
from pgjobs.errors import (
    PgjobsError,
)
from pgjobs.web import _api, _auth, _pages
from pgjobs.web._auth import Auth
from pgjobs.web._dashboard import ApiResponse, Dashboard, as_http_error
from pgjobs.web._db import Database
from pgjobs.web._http import HttpError


def _wants_json(request: Request) -> bool:
    path = request.url.path.removeprefix(request.scope.get("root_path", ""))
    return path.startswith(("/api/", "/healthz")) or "text/html" not in request.headers.get(
        "accept", ""
    )


def _error_response(request: Request, error: HttpError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else {}
    if "retry_after" in error.extra:  # 429 after failed logins: when to try again
        headers["Retry-After"] = str(error.extra["retry_after"])
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
        headers=headers,
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
