"""Health probes without a database: request lines, responses, liveness, options."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from pgjobs.cli._main import build_parser
from pgjobs.errors import ConfigurationError
from pgjobs.worker import WorkerConfig
from pgjobs.worker._health import (
    BadRequestError,
    listen,
    liveness,
    parse_request_line,
    response,
)
from pgjobs.worker._service import Service


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"GET /livez HTTP/1.1\r\n", ("GET", "/livez")),
        (b"GET /readyz HTTP/1.0\n", ("GET", "/readyz")),
        (b"HEAD /readyz?verbose=1 HTTP/1.1\r\n", ("HEAD", "/readyz")),
        (b"POST /livez HTTP/1.1\r\n", ("POST", "/livez")),
    ],
)
def test_request_lines_that_are_understood(line: bytes, expected: tuple[str, str]) -> None:
    assert parse_request_line(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        b"\r\n",
        b"GET\r\n",
        b"GET /livez\r\n",
        b"GET livez HTTP/1.1\r\n",
        b"GET /livez HTTP/2\r\n",
        b"GET /livez SMTP\r\n",
        b"GET  /livez HTTP/1.1\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n",
    ],
)
def test_request_lines_that_are_refused(line: bytes) -> None:
    with pytest.raises(BadRequestError):
        parse_request_line(line)


def test_a_response_has_its_length_closes_and_leaves_the_body_out_for_head() -> None:
    full = response(503, {"status": "fail"})
    head, _, body = full.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 503 Service Unavailable"
    assert f"Content-Length: {len(body)}".encode() in head
    assert b"Connection: close" in head
    assert b"Content-Type: application/json" in head
    assert json.loads(body) == {"status": "fail"}
    assert response(503, {"status": "fail"}, head=True) == head + b"\r\n\r\n"
    assert b"Allow: GET, HEAD" in response(405, {})


class Idle(Service):
    name = "idle"

    async def run_once(self) -> float | None:
        return None


class Broken(Service):
    name = "broken"

    async def run_once(self) -> float | None:
        raise RuntimeError("a bug")


class Quitter(Service):
    name = "quitter"

    async def run_once(self) -> float | None:
        self._stopping = True  # ends its own loop without being asked
        return 0


def test_liveness_names_the_services_that_ended_on_their_own() -> None:
    async def main() -> None:
        running, stopped = Idle(), Idle()
        stopped.name = "stopped"  # type: ignore[misc]
        tasks: dict[Service, asyncio.Task[None]] = {
            service: asyncio.create_task(service.run()) for service in (running, stopped)
        }
        await asyncio.sleep(0)
        stopped.stop()
        await tasks[stopped]
        answer = liveness(tasks)
        assert answer.status == 200
        assert answer.body == {
            "status": "ok",
            "services": {"idle": "running", "stopped": "stopped"},
        }

        broken = Broken()
        tasks[broken] = asyncio.create_task(broken.run())
        await asyncio.gather(tasks[broken], return_exceptions=True)
        answer = liveness(tasks)
        assert answer.status == 503
        assert answer.body["dead"] == ["broken"]
        assert answer.body["services"]["broken"] == "failed"
        running.stop()
        await tasks[running]

    asyncio.run(main())


def test_liveness_counts_a_service_that_returned_unasked_as_dead() -> None:
    async def main() -> None:
        quitter = Quitter()
        task = asyncio.create_task(quitter.run())
        await task
        quitter._stopping = False  # as if it had returned without `stop()`
        answer = liveness({quitter: task})
        assert answer.status == 503
        assert answer.body["services"] == {"quitter": "ended"}

    asyncio.run(main())


def test_a_taken_port_is_one_error_naming_it() -> None:
    taken = socket.create_server(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    try:
        with pytest.raises(ConfigurationError) as refused:
            listen("127.0.0.1", port)
        message = str(refused.value)
        assert f"127.0.0.1:{port}" in message
        assert "--health-port" in message
        assert "\n" not in message
    finally:
        taken.close()


@pytest.mark.parametrize("port", [-1, 65_536])
def test_a_port_out_of_range_is_refused(port: int) -> None:
    with pytest.raises(ConfigurationError, match="health_port must be 0 to 65535"):
        WorkerConfig(health_port=port)


def test_probes_are_off_unless_asked_for_and_serve_every_interface() -> None:
    assert WorkerConfig().health_port is None
    args = build_parser().parse_args(["worker", "x:app"])
    assert args.health_port is None
    assert args.health_host == "0.0.0.0"


def test_the_worker_gets_the_health_options(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.unit.test_cli_worker import run

    config = run(monkeypatch, "--health-port", "8081", "--health-host", "127.0.0.1")
    assert (config.health_port, config.health_host) == (8081, "127.0.0.1")


def test_several_processes_cannot_share_one_health_port() -> None:
    args = build_parser().parse_args(
        ["worker", "tests.apps.basic:app", "--processes", "2", "--health-port", "8081"]
    )
    with pytest.raises(ConfigurationError, match="--processes 1"):
        args.handler(args)
