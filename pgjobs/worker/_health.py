"""Health: /livez and /readyz over a minimal HTTP/1.1 server in the worker's own event loop.

The server is the standard library's (`asyncio.start_server`) and speaks just
enough HTTP for a probe: it reads the request line and skips the headers
(within `READ_TIMEOUT` seconds and `MAX_LINE` bytes a line, so a slow or
hostile client cannot hold it), answers GET or HEAD with a small JSON body,
`Content-Length` and `Connection: close`, and closes.

- `/livez`: 200 while every service of the worker runs (or was stopped on
  purpose); 503 once one has ended on its own, naming it. It answers only
  if the event loop does, which is the other half of being alive.
- `/readyz`: 200 when the database answers through the worker's pool, its
  pgjobs schema is the revision this code needs, the listener is connected
  (or the worker polls), and the worker is not stopping. The database and
  schema are one cached check (`Readiness.ttl`), so probes cannot load the
  database however often they come.

The socket is bound by `listen` before the worker registers, so a port that
is taken stops the worker at start; `HealthServer`, a `Service` of the
worker's session, serves it until the very end of a stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from pgjobs import _migrate, _window
from pgjobs.errors import ConfigurationError, SchemaVersionError
from pgjobs.worker._db import CONNECTION_ERRORS
from pgjobs.worker._listener import Listener
from pgjobs.worker._service import Service

#: Seconds a client gets to send its request line and headers.
READ_TIMEOUT = 2.0
#: The longest request or header line read, in bytes; a longer one gets 400.
MAX_LINE = 2048
#: The most header lines read before the request is refused.
MAX_HEADERS = 64
#: Connections served at once; more are closed at once, unanswered.
MAX_CONNECTIONS = 32

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host`:`port` (port 0: any free one).

    Raises:
        ConfigurationError: the port is taken, or the address cannot be
            bound here; the message names it.
    """
    try:
        family, _, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        return socket.create_server(address, family=family)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot serve health probes on {host}:{port}: {exc.strerror or exc}; "
            "choose another --health-port (or stop what holds it)"
        ) from None


# -- HTTP (pure) -----------------------------------------------------------------


class BadRequestError(Exception):
    """A request this server does not answer but with 400."""


def parse_request_line(line: bytes) -> tuple[str, str]:
    """The method and path (without its query) of an HTTP/1.x request line.

    Raises:
        BadRequestError: anything but `METHOD /path HTTP/1.x`.
    """
    parts = line.decode("latin-1").rstrip("\r\n").split(" ")
    if len(parts) != 3 or not parts[1].startswith("/") or parts[2] not in ("HTTP/1.0", "HTTP/1.1"):
        raise BadRequestError(line[:80])
    method, target, _ = parts
    return method, target.split("?", 1)[0]


def response(status: int, body: Mapping[str, Any], *, head: bool = False) -> bytes:
    """A complete HTTP/1.1 response with a JSON body (left out for HEAD), closing the connection."""
    payload = json.dumps(body, separators=(",", ":")).encode() + b"\n"
    lines = [
        f"HTTP/1.1 {status} {_REASONS[status]}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        "Cache-Control: no-store",
        "Connection: close",
    ]
    if status == 405:
        lines.append("Allow: GET, HEAD")
    head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head_bytes if head else head_bytes + payload


# -- the checks ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """What a probe answers: its status code and JSON body."""

    status: int
    body: Mapping[str, Any]


def liveness(tasks: Mapping[Service, asyncio.Task[None]]) -> Answer:
    """200 while no service has ended without being asked to; else 503 naming the services.

    A service is `running`; `stopped` when it ended after `stop()` (a
    graceful stop stops them in turn); `failed` when it raised; `ended`
    when it returned without being asked to.
    """
    states = {service.name: _state(service, task) for service, task in tasks.items()}
    dead = sorted(name for name, state in states.items() if state in ("failed", "ended"))
    body: dict[str, Any] = {"status": "fail" if dead else "ok", "services": states}
    if dead:
        body["dead"] = dead
    return Answer(503 if dead else 200, body)


def _state(service: Service, task: asyncio.Task[None]) -> str:
    if not task.done():
        return "running"
    if not task.cancelled() and task.exception() is not None:
        return "failed"
    return "stopped" if service.stopping else "ended"


class Readiness:
    """/readyz: the database and schema (one cached check), the listener, and not stopping.

    Args:
        pool: the worker's pool, through which the check runs, as the
            worker's own statements do.
        listener: the worker's listener; None for a poll-only worker.
        stopping: set once the worker begins to stop.
        ttl: seconds a database check's result is reused: probes at any
            rate cost the database at most one check this often.
        timeout: seconds a database check may take before it counts as
            unreachable.
        clock: the monotonic clock (a parameter for the unit tests).
    """

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        listener: Listener | None,
        stopping: asyncio.Event,
        *,
        ttl: float = 1.0,
        timeout: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pool = pool
        self.listener = listener
        self.stopping = stopping
        self.ttl = ttl
        self.timeout = timeout
        self.clock = clock
        #: Database checks run so far (the tests count them).
        self.checks = 0
        self._last: tuple[float, dict[str, Any], dict[str, Any]] | None = None
        self._running: asyncio.Future[tuple[dict[str, Any], dict[str, Any]]] | None = None

    async def answer(self) -> Answer:
        """The /readyz answer: 200 when every check is ok, else 503; each check's state."""
        database, schema = await self._database()
        if self.listener is None:
            listener = {"ok": True, "state": "polling"}
        elif self.listener.connected.is_set():
            listener = {"ok": True, "state": "connected"}
        else:
            listener = {"ok": False, "state": "disconnected"}
        stopping = self.stopping.is_set()
        checks = {
            "database": database,
            "schema": schema,
            "listener": listener,
            "stopping": {"ok": not stopping, "state": "stopping" if stopping else "running"},
        }
        ready = all(check["ok"] for check in checks.values())
        return Answer(
            200 if ready else 503, {"status": "ok" if ready else "fail", "checks": checks}
        )

    def cancel(self) -> None:
        """Cancel a database check still running (the worker is closing its pool)."""
        if self._running is not None:
            self._running.cancel()

    async def _database(self) -> tuple[dict[str, Any], dict[str, Any]]:
        if self._last is not None and self.clock() - self._last[0] < self.ttl:
            return self._last[1], self._last[2]
        # Probes that arrive during a check share it.
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(self._check())
        running = self._running
        try:
            return await asyncio.shield(running)
        finally:
            if self._running is running and running.done():
                self._running = None

    async def _check(self) -> tuple[dict[str, Any], dict[str, Any]]:
        self.checks += 1
        try:
            async with asyncio.timeout(self.timeout):
                found = await self._revision()
        except (*CONNECTION_ERRORS, psycopg.Error, TimeoutError) as exc:
            database = {"ok": False, "state": "unreachable", "error": type(exc).__name__}
            schema = {"ok": False, "state": "unknown"}
        else:
            database = {"ok": True, "state": "reachable"}
            try:
                _migrate.check_schema(found)
            except SchemaVersionError as exc:
                schema = {
                    "ok": False,
                    "state": "incompatible",
                    "revision": found.revision if found else None,
                    "error": str(exc),
                }
            else:
                revision = found.revision if found else None
                schema = {"ok": True, "state": "compatible", "revision": revision}
        self._last = (self.clock(), database, schema)
        return database, schema

    async def _revision(self) -> _window.Schema | None:
        try:
            async with self.pool.connection(timeout=self.timeout) as conn:
                return await _migrate.current_schema_async(conn)
        except (psycopg.OperationalError, psycopg.InterfaceError):
            # A pooled connection the server dropped while idle fails on
            # first use and is discarded: try once more on a fresh one, as
            # the worker's own statements do (pgjobs/worker/_db.py, fetch).
            async with self.pool.connection(timeout=self.timeout) as conn:
                return await _migrate.current_schema_async(conn)


# -- the server --------------------------------------------------------------------


class HealthServer(Service):
    """Serves /livez and /readyz on a socket bound by `listen`, until stopped.

    Its one pass starts serving; it then waits for `stop`, and closing
    ends every connection still open.

    Args:
        sock: the listening socket (see `listen`).
        tasks: the worker's services and their tasks, as they start.
        readiness: the /readyz checks.
    """

    name = "health"

    def __init__(
        self,
        sock: socket.socket,
        tasks: Mapping[Service, asyncio.Task[None]],
        readiness: Readiness,
    ) -> None:
        super().__init__()
        self.sock = sock
        self.tasks = tasks
        self.readiness = readiness
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[Any]] = set()

    @property
    def port(self) -> int:
        """The port served (the one chosen, when asked for port 0)."""
        return int(self.sock.getsockname()[1])

    async def run_once(self) -> None:
        """Start serving; the regular cadence (no interval) then waits for `stop`."""
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, sock=self.sock, limit=MAX_LINE)

    async def close(self) -> None:
        """Stop accepting, and end the connections still open."""
        if self._server is not None and self.sock.fileno() != -1:
            # (The worker closes the socket itself when its run is cancelled.)
            self._server.close()
            await self._server.wait_closed()
        else:
            self.sock.close()
        for client in list(self._clients):
            client.cancel()
        if self._clients:
            await asyncio.wait(list(self._clients))
        self.readiness.cancel()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        try:
            if task is None or len(self._clients) >= MAX_CONNECTIONS:
                return
            self._clients.add(task)
            try:
                async with asyncio.timeout(READ_TIMEOUT):
                    reply = await self._reply(reader)
                    writer.write(reply)
                    await writer.drain()
            except (TimeoutError, ConnectionError):
                pass
        finally:
            if task is not None:
                self._clients.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _reply(self, reader: asyncio.StreamReader) -> bytes:
        try:
            method, path = parse_request_line(await reader.readuntil(b"\n"))
            # Headers are read (and ignored) so that closing with them unread
            # cannot reset the connection before the client reads the answer.
            for _ in range(MAX_HEADERS):
                if (await reader.readuntil(b"\n")).strip() == b"":
                    break
            else:
                raise BadRequestError("too many headers")
        except (BadRequestError, asyncio.LimitOverrunError, asyncio.IncompleteReadError):
            return response(400, {"status": "fail", "error": "bad request"})
        head = method == "HEAD"
        if method not in ("GET", "HEAD"):
            return response(405, {"status": "fail", "error": "GET or HEAD only"})
        if path == "/livez":
            answer = liveness(self.tasks)
        elif path == "/readyz":
            answer = await self.readiness.answer()
        else:
            return response(
                404, {"status": "fail", "error": "not found: /livez or /readyz"}, head=head
            )
        return response(answer.status, answer.body, head=head)
