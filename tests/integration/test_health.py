"""/livez and /readyz of an in-process worker on a real PostgreSQL, over real HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

import pgjobs
from pgjobs import _migrate
from pgjobs.errors import ConfigurationError
from pgjobs.worker import _health
from pgjobs.worker._heartbeat import Heartbeat
from pgjobs.worker._worker import EXIT_LOOP_FAILED, EXIT_OK, Worker


@pytest.fixture
def app(dsn: str) -> Iterator[pgjobs.App]:
    application = pgjobs.App(dsn)
    yield application
    application.close()


def get(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, Any]]:
    """The status and JSON body of one request to the health server."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 (http://, ours)
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


async def aget(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, Any]]:
    return await asyncio.to_thread(get, port, path, method)


async def serving(worker: Worker) -> int:
    """Wait until the worker serves its probes; returns the port."""
    for _ in range(1000):
        session = worker._session
        if session is not None and session.health is not None and session.health._server:
            return session.health.port
        await asyncio.sleep(0.01)
    raise AssertionError("the worker never served its health probes")


async def until(probe: Callable[[], Awaitable[bool]], attempts: int = 600) -> None:
    """Poll `probe` every 50 ms until it is true (about 30 s at most)."""
    for _ in range(attempts):
        if await probe():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition never met")


def test_a_healthy_worker_is_live_and_ready(app: pgjobs.App) -> None:
    async def main() -> None:
        worker = Worker(app, health_port=0, health_host="127.0.0.1")
        run = asyncio.create_task(worker.run())
        port = await serving(worker)
        await until(lambda: _ready(port))
        status, live = await aget(port, "/livez")
        assert status == 200
        assert live["status"] == "ok"
        assert set(live["services"]) == {
            "health",
            "completer",
            "heartbeat",
            "progress",
            "listener",
            "leader",
            "fetcher",
        }
        assert set(live["services"].values()) == {"running"}
        status, ready = await aget(port, "/readyz")
        assert status == 200
        assert ready["checks"] == {
            "database": {"ok": True, "state": "reachable"},
            "schema": {"ok": True, "state": "compatible", "revision": _migrate.SCHEMA_REVISION},
            "listener": {"ok": True, "state": "connected"},
            "stopping": {"ok": True, "state": "running"},
        }
        assert (await aget(port, "/readyz?full=1"))[0] == 200
        assert (await aget(port, "/livez", "HEAD"))[0] == 200
        assert (await aget(port, "/metrics"))[0] == 404
        assert (await aget(port, "/"))[0] == 404
        assert (await aget(port, "/livez", "POST"))[0] == 405
        worker.request_stop()
        assert await run == EXIT_OK
        # Stopped and closed with the worker.
        assert not [task for task in asyncio.all_tasks() if task.get_name() == "pgjobs-health"]
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()

    asyncio.run(main())


async def _ready(port: int) -> bool:
    return (await aget(port, "/readyz"))[0] == 200


def test_a_poll_only_worker_is_ready_without_a_listener(app: pgjobs.App) -> None:
    async def main() -> None:
        worker = Worker(app, listen=False, health_port=0, health_host="127.0.0.1")
        run = asyncio.create_task(worker.run())
        port = await serving(worker)
        status, ready = await aget(port, "/readyz")
        assert status == 200
        assert ready["checks"]["listener"] == {"ok": True, "state": "polling"}
        worker.request_stop()
        assert await run == EXIT_OK

    asyncio.run(main())


def test_readiness_is_checked_once_per_ttl_however_often_probed(app: pgjobs.App) -> None:
    async def main() -> None:
        worker = Worker(app, health_port=0, health_host="127.0.0.1")
        run = asyncio.create_task(worker.run())
        port = await serving(worker)
        assert worker._session is not None
        assert worker._session.health is not None
        readiness = worker._session.health.readiness
        await until(lambda: _ready(port))
        readiness.ttl = 3600.0  # so that the count below does not depend on speed
        readiness._last = None  # the next probe checks
        before = readiness.checks
        answers = await asyncio.gather(*(aget(port, "/readyz") for _ in range(20)))
        answers += [await aget(port, "/readyz") for _ in range(10)]
        assert {status for status, _ in answers} == {200}
        assert readiness.checks == before + 1
        worker.request_stop()
        assert await run == EXIT_OK

    asyncio.run(main())


def test_readiness_fails_while_stopping_and_liveness_holds_to_the_end(app: pgjobs.App) -> None:
    release = asyncio.Event()

    @app.task(name="held")
    async def held() -> None:
        await release.wait()

    async def main() -> None:
        held.enqueue()
        worker = Worker(app, health_port=0, health_host="127.0.0.1", grace_period=60)
        run = asyncio.create_task(worker.run())
        port = await serving(worker)
        await until(lambda: _true(bool(worker.running)))
        assert (await aget(port, "/readyz"))[0] == 200
        worker.request_stop()  # as SIGTERM does; the held job keeps it draining
        status, ready = await aget(port, "/readyz")
        assert status == 503
        assert ready["status"] == "fail"
        assert ready["checks"]["stopping"] == {"ok": False, "state": "stopping"}
        status, live = await aget(port, "/livez")
        assert status == 200
        assert live["services"]["fetcher"] == "stopped"
        assert live["services"]["health"] == "running"
        release.set()
        assert await run == EXIT_OK

    asyncio.run(main())


async def _true(value: bool) -> bool:
    return value


def test_liveness_fails_once_a_service_died_until_the_worker_exits(
    app: pgjobs.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed service stops the worker (exit 3) after it drains: from the
    failure until the exit, /livez answers 503 naming the service."""
    release = asyncio.Event()
    broken = asyncio.Event()
    beat = Heartbeat.run_once

    async def failing_beat(self: Heartbeat) -> float | None:
        if broken.is_set():
            raise psycopg.errors.FeatureNotSupported("cached plan must not change result type")
        return await beat(self)

    monkeypatch.setattr(Heartbeat, "run_once", failing_beat)

    @app.task(name="held")
    async def held() -> None:
        await release.wait()

    async def main() -> None:
        held.enqueue()
        worker = Worker(
            app, health_port=0, health_host="127.0.0.1", heartbeat_interval=0.1, grace_period=60
        )
        run = asyncio.create_task(worker.run())
        port = await serving(worker)
        await until(lambda: _true(bool(worker.running)))
        assert (await aget(port, "/livez"))[0] == 200
        broken.set()
        await until(lambda: _status(port, "/livez", 503))
        _, live = await aget(port, "/livez")
        assert live["status"] == "fail"
        assert live["dead"] == ["heartbeat"]
        assert live["services"]["heartbeat"] == "failed"
        assert (await aget(port, "/readyz"))[0] == 503  # stopping
        release.set()
        assert await run == EXIT_LOOP_FAILED

    asyncio.run(main())


async def _database(port: int, state: str) -> bool:
    return (await aget(port, "/readyz"))[1]["checks"]["database"]["state"] == state


async def _status(port: int, path: str, status: int) -> bool:
    return (await aget(port, path))[0] == status


@pytest.fixture
def scratch(server_dsn: str) -> Iterator[tuple[str, str]]:
    """A migrated database of its own that a test may take away: (name, dsn)."""
    name = f"pgjobs_health_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn = make_conninfo(server_dsn, dbname=name)
    _migrate.upgrade(dsn)
    yield name, dsn
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.slow
def test_readiness_follows_the_database_away_and_back(
    server_dsn: str, scratch: tuple[str, str]
) -> None:
    name, dsn = scratch
    app = pgjobs.App(dsn)

    def take_away(admin: psycopg.Connection[Any]) -> None:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )

    async def main(admin: psycopg.Connection[Any]) -> None:
        worker = Worker(app, health_port=0, health_host="127.0.0.1")
        run = asyncio.create_task(worker.run())
        port = await serving(worker)
        await until(lambda: _ready(port))
        await asyncio.to_thread(take_away, admin)
        await until(lambda: _database(port, "unreachable"))
        status, ready = await aget(port, "/readyz")
        assert status == 503
        assert ready["checks"]["database"]["ok"] is False
        assert ready["checks"]["schema"] == {"ok": False, "state": "unknown"}
        assert (await aget(port, "/livez"))[0] == 200  # it rides the outage out
        await asyncio.to_thread(admin.execute, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await until(lambda: _ready(port))
        # A migration this code does not know, run while it works.
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("UPDATE pgjobs.alembic_version SET version_num = 'zzzz_newer'")
        await until(lambda: _status(port, "/readyz", 503))
        _, ready = await aget(port, "/readyz")
        assert ready["checks"]["database"]["ok"] is True
        assert ready["checks"]["schema"]["state"] == "incompatible"
        assert ready["checks"]["schema"]["revision"] == "zzzz_newer"
        worker.request_stop()
        assert await run == EXIT_OK

    try:
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            asyncio.run(main(admin))
    finally:
        app.close()


def test_a_port_that_is_taken_stops_the_worker_before_it_registers(
    app: pgjobs.App, conn: psycopg.Connection[Any]
) -> None:
    taken = socket.create_server(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    try:
        worker = Worker(app, health_port=port, health_host="127.0.0.1")
        with pytest.raises(ConfigurationError, match=f"127.0.0.1:{port}"):
            asyncio.run(worker.run())
        assert worker.worker_id is None
        assert conn.execute("SELECT count(*) FROM pgjobs.workers").fetchone() == (0,)
    finally:
        taken.close()


def test_slow_long_and_malformed_requests_are_cut_short(
    app: pgjobs.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_health, "READ_TIMEOUT", 0.3)

    def exchange(port: int, data: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(data)
            chunks = []
            while chunk := client.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)

    async def main() -> None:
        worker = Worker(app, health_port=0, health_host="127.0.0.1")
        run = asyncio.create_task(worker.run())
        port = await serving(worker)
        # Says nothing: closed unanswered after the read timeout.
        assert await asyncio.to_thread(exchange, port, b"") == b""
        # Sends half a request line and stops.
        assert await asyncio.to_thread(exchange, port, b"GET /livez HT") == b""
        too_long = b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\n\r\n"
        assert (await asyncio.to_thread(exchange, port, too_long)).startswith(b"HTTP/1.1 400 ")
        garbage = b"\x16\x03\x01 hello\r\n\r\n"
        assert (await asyncio.to_thread(exchange, port, garbage)).startswith(b"HTTP/1.1 400 ")
        headers = b"GET /livez HTTP/1.1\r\n" + b"X: y\r\n" * 100 + b"\r\n"
        assert (await asyncio.to_thread(exchange, port, headers)).startswith(b"HTTP/1.1 400 ")
        ok = await asyncio.to_thread(exchange, port, b"GET /livez HTTP/1.0\r\nHost: x\r\n\r\n")
        head, _, body = ok.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Connection: close" in head
        assert f"Content-Length: {len(body)}".encode() in head
        assert json.loads(body)["status"] == "ok"
        worker.request_stop()
        assert await run == EXIT_OK

    asyncio.run(main())
