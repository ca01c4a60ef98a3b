"""A local HTTP endpoint for webhook tests: records each POST, answers as the test says."""

from __future__ import annotations

import http.server
import json
import threading
from typing import Any


class Endpoint(http.server.ThreadingHTTPServer):
    """Records each POST as (headers, body); answers `statuses` in turn, then 200."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[Any, bytes]] = []
        self.statuses: list[int] = []
        self.hang = 0.0  # seconds to wait before answering
        self.released = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks"

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Endpoint

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.headers, body))
        if self.server.hang:
            self.server.released.wait(self.server.hang)
        status = self.server.statuses.pop(0) if self.server.statuses else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads `received`."""
