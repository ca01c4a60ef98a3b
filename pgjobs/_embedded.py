"""An embedded PostgreSQL (the `pgserver` package), for the demo and for machines without one."""

from __future__ import annotations

import importlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

from pgjobs.errors import ConfigurationError


class EmbeddedPostgres:
    """Start a private PostgreSQL in `data_dir` (a temp dir by default) and stop it on exit.

    It listens on a Unix socket inside its data directory, not on TCP, so it
    cannot collide with a server already running on this machine.
    """

    def __init__(self, data_dir: str | Path | None = None) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if data_dir is None:
            # Short path on purpose: the socket path must fit in 107 bytes.
            self._tmp = tempfile.TemporaryDirectory(prefix="pgjobs-")
            data_dir = self._tmp.name
        self.data_dir = Path(data_dir)
        self._server: Any = None
        self.dsn = ""

    def start(self) -> str:
        """Start the server (initialising the data directory if new); returns its DSN."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
                pgserver: Any = importlib.import_module("pgserver")
        except ImportError:
            raise ConfigurationError(
                "no database configured and the embedded PostgreSQL is not installed. "
                "Install it with: pip install 'pgjobs[embedded]', or set PGJOBS_DSN."
            ) from None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _forget_dead_handles(self.data_dir)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._server = pgserver.get_server(self.data_dir, cleanup_mode="stop")
        self.dsn = str(self._server.get_uri())
        return self.dsn

    @property
    def bin_dir(self) -> Path:
        """Where the embedded PostgreSQL's programs (psql, pg_ctl) are."""
        module: Any = importlib.import_module("pgserver.postgres_server")
        return Path(module.POSTGRES_BIN_PATH)

    def stop(self) -> None:
        """Stop the server and remove a temporary data directory."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _forget_dead_handles(data_dir: Path) -> None:
    """Drop pids of dead processes from pgserver's list of the server's users.

    pgserver stops a server only when the last process using it lets go, and
    lists those processes in .handle_pids.json. A process killed with SIGKILL
    never removes itself, and the server would then outlive every later run.
    """
    handles = data_dir / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True
