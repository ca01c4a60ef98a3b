"""A PgBouncer of the tests' own, in transaction mode, in front of the test server.

Stock settings but for what a test needs: where to listen, where the server
is, and who may connect. It neither accepts the `options` startup parameter
(`ignore_startup_parameters`) nor keeps prepared statements
(`max_prepared_statements`): pgjobs' defaults must work without them.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

#: Where Debian's package puts it; CI installs it (.ci/run).
BINARY = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def available() -> bool:
    """Whether the pgbouncer binary is installed."""
    return os.access(BINARY, os.X_OK)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgBouncer:
    """A pgbouncer process in front of the server of `server_dsn`.

    `dsn(database_dsn)` is the address of a database through it.

    PgBouncer will not run as root: as root, it is started as the owner of
    the server's socket directory (the embedded server's), else as the
    `postgres` user (or `nobody`), which then owns its temp dir.
    """

    def __init__(self, server_dsn: str) -> None:
        server = conninfo_to_dict(server_dsn)
        self.user = str(server.get("user") or "postgres")
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pgjobs-pgbouncer-"))
        host = str(server.get("host") or "127.0.0.1")
        target = f"host={host} port={server.get('port') or 5432}"
        (self.dir / "users.txt").write_text(f'"{self.user}" ""\n')
        (self.dir / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = {target}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.dir / 'users.txt'}\n"
            "pool_mode = transaction\n"
            f"logfile = {self.dir / 'pgbouncer.log'}\n"
        )
        command = [BINARY, str(self.dir / "pgbouncer.ini")]
        if os.geteuid() == 0:
            runner = _unprivileged_user(host)
            os.chown(self.dir, runner.pw_uid, runner.pw_gid)
            for path in self.dir.iterdir():
                os.chown(path, runner.pw_uid, runner.pw_gid)
            command[1:1] = ["-u", runner.pw_name]
        self.proc = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=self.dir
        )

    def dsn(self, database_dsn: str) -> str:
        """`database_dsn` (a database on the server), through this PgBouncer."""
        return make_conninfo(database_dsn, host="127.0.0.1", port=self.port, user=self.user)

    def wait_ready(self, database_dsn: str, timeout: float = 15) -> None:
        """Block until a query through PgBouncer answers."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.dsn(database_dsn), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"pgbouncer did not start:\n{self.log()}") from None
                time.sleep(0.1)

    def log(self) -> str:
        """PgBouncer's log so far."""
        path = self.dir / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stop the process and remove its temp dir."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def _unprivileged_user(host: str) -> pwd.struct_passwd:
    # A server on a Unix socket (the embedded one) may keep it in a directory
    # only its own user can enter: then run as that user.
    if host.startswith("/"):
        owner = os.stat(host).st_uid
        if owner != 0:
            return pwd.getpwuid(owner)
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("pgbouncer will not run as root, and there is no postgres or nobody user")
