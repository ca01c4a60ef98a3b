"""The ASGI application factory: routes, the middleware that guards every request, errors."""

from __future__ import annotations

import contextlib
import importlib.resources
from collections.abc import AsyncIterator, Iterable
from urllib.parse import urlsplit

import psycopg
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pgjobs._app import App
from pgjobs.errors import (
    PgjobsError,
)
from pgjobs.web import _api, _auth, _http, _pages
from pgjobs.web._auth import Auth
from pgjobs.web._dashboard import ApiResponse, Dashboard, as_http_error, path_for
from pgjobs.web._db import Database
from pgjobs.web._http import HttpError

#: Sent with every response. No inline script or style anywhere, no framing,
#: forms post only here; the page's own URL never leaves it in a Referer.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

_ENCODED_HEADERS = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]


#: Set on each request's scope by _Guard: whether its path is the API's (or /healthz, /metrics).
_API_KEY = "pgjobs.api"


def _is_api(path: str) -> bool:
    return path.startswith(("/api/", "/healthz", "/metrics"))


class _Guard:
    """Every HTTP request and response: the Host allow-list, a UTF-8 URL, security headers.

    Pages and API answers are also `Cache-Control: no-store` (they show jobs
    to whoever is logged in); static files keep their caching.

    Args:
        app: the application inside.
        allowed_hosts: the Host names to answer (from parse_allowed_hosts); None: any.
    """

    def __init__(self, app: ASGIApp, allowed_hosts: tuple[str, ...] | None) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse a request with a Host not allowed or a URL that is not UTF-8, or pass
        it on; add the security headers to the response either way."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", "")).removeprefix(str(scope.get("root_path", "")))
        scope[_API_KEY] = _is_api(path)
        extra = list(_ENCODED_HEADERS)
        if not path.startswith("/static/"):
            extra.append((b"cache-control", b"no-store"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, _location_path(v) if k.lower() == b"location" else v)
                    for k, v in message.get("headers", [])
                ]
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        error = self._refusal(scope)
        if error is None:
            await self.app(scope, receive, send_with_headers)
            return
        response = ApiResponse(error.body(), status_code=error.status)
        await response(scope, receive, send_with_headers)

    def _refusal(self, scope: Scope) -> HttpError | None:
        headers = dict(scope.get("headers", []))
        host = headers.get(b"host", b"").decode("latin-1")
        if self.allowed_hosts is not None and not _http.host_allowed(host, self.allowed_hosts):
            return HttpError(
                400,
                f"this dashboard does not answer to the host name {host[:100]!r}; "
                "use one of its allowed hosts (the --allowed-hosts option)",
            )
        raw_path = scope.get("raw_path") or str(scope.get("path", "")).encode("utf-8", "replace")
        if not _http.url_is_utf8(raw_path, scope.get("query_string", b"")):
            return HttpError(
                400,
                "the URL's path or query is not UTF-8 once percent-decoded; encode text "
                "as UTF-8 before percent-encoding it",
            )
        if not _http.is_unicode(str(scope.get("path", ""))):
            return HttpError(400, "the URL's path holds a lone surrogate, which is not text")
        return None


def _location_path(location: bytes) -> bytes:
    """A redirect's target without its scheme and host: a path, as the dashboard's own are.

    Starlette's redirect of a trailing slash (/jobs/ to /jobs) builds a full
    URL from the request's Host header, which the client chose.
    """
    if not location.lower().startswith((b"http://", b"https://")):
        return location
    parts = urlsplit(location)
    return (parts.path or b"/") + (b"?" + parts.query if parts.query else b"")


def _wants_json(request: Request) -> bool:
    # Decided before routing: inside the /api/v1 mount, root_path has grown to end in /api/v1.
    api = request.scope.get(_API_KEY)
    if api is None:
        api = _is_api(request.url.path.removeprefix(request.scope.get("root_path", "")))
    return bool(api) or "text/html" not in request.headers.get("accept", "")


def _error_response(request: Request, error: HttpError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else {}
    if "retry_after" in error.extra:  # 429 after failed logins: when to try again
        headers["Retry-After"] = str(error.extra["retry_after"])
    if _wants_json(request):
        return ApiResponse(error.body(), status_code=error.status, headers=headers)
    dash: Dashboard = request.app.state.dashboard
    if error.status == 401:
        login = path_for(request, "login").include_query_params(next=request.url.path)
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
    allowed_hosts: str | Iterable[str] | None = None,
    pooled: bool | None = None,
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
        allowed_hosts: the host names requests may name in their Host header
            (`dash.example.com`, `*.example.com`; a list, or comma-separated);
            other requests get 400. Default: any host.
        pooled: `dsn` is a transaction-pooling PgBouncer: the statement
            timeout is not sent (PgBouncer refuses it at connect). Default:
            the App's `pooled` when `dsn` is not given, else False.

    Raises:
        ConfigurationError: malformed tokens or allowed hosts.
    """
    hosts = None if allowed_hosts is None else _http.parse_allowed_hosts(allowed_hosts)
    auth = Auth(_auth.load_tokens(tokens, tokens_file), secret_key=secret_key, insecure=insecure)
    db = Database(
        dsn or app.dsn,
        statement_timeout=statement_timeout_ms,
        connect_timeout=connect_timeout,
        pooled=(app.pooled and dsn is None) if pooled is None else pooled,
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
        Route("/metrics", _api.metrics, name="metrics"),
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
        middleware=[Middleware(_Guard, allowed_hosts=hosts)],
    )
    web.state.dashboard = dash
    return web
