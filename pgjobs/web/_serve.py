"""Serving the dashboard with uvicorn: the address to print, and a server in a thread."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from pgjobs.errors import PgjobsError


@dataclass
class Server:
    """A dashboard served in a background thread (for the demo and tests)."""

    url: str
    _server: Any
    _thread: threading.Thread

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to exit and wait for its thread."""
        self._server.should_exit = True
        self._thread.join(timeout)


def url_for(host: str, port: int, root_path: str = "") -> str:
    """The address to print for people."""
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):  # noqa: S104 - only naming the wildcard, not binding
        shown = "127.0.0.1"
    return f"http://{shown}:{port}{root_path}/"


def under_root_path(web: Any, root_path: str) -> Any:
    """`web` served under `root_path`, whether or not the proxy in front strips it.

    uvicorn's `root_path` is for a proxy that strips the prefix: it turns a
    request for /jobs into the path /pgjobs/jobs, which the app routes as
    /jobs and links as /pgjobs/jobs. A request that still carries the prefix
    (a proxy that passes the path as it is, or a visit to the address the
    dashboard prints) arrives as /pgjobs/pgjobs/jobs, and would be a 404:
    one prefix is taken off it here.
    """
    if not root_path:
        return web
    twice = root_path + root_path

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] in ("http", "websocket") and (
            path == twice or path.startswith(twice + "/")
        ):
            scope = dict(scope, path=path[len(root_path) :])
            raw = scope.get("raw_path")
            if isinstance(raw, bytes) and raw.startswith(twice.encode()):
                scope["raw_path"] = raw[len(root_path.encode()) :]
        await web(scope, receive, send)

    return app


def serve_in_thread(web: Any, host: str = "127.0.0.1", port: int = 0) -> Server:
    """Serve an ASGI app from `create_app` in a daemon thread; port 0 picks a free one.

    Raises:
        PgjobsError: uvicorn did not start within 10 seconds.
    """
    import uvicorn

    config = uvicorn.Config(web, host=host, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="pgjobs-dashboard", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise PgjobsError(f"the dashboard could not listen on {host}:{port}")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    return Server(url_for(host, int(bound)), server, thread)
