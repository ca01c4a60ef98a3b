"""The README's Node snippet enqueues through `pgjobs.enqueue()` with the `pg` package, for real.

The snippet is read from README.md between its markers, so the README and
this test cannot drift apart. `pg` is installed from the npm registry into the
test's temporary directory; CI installs Debian's nodejs and npm (.ci/run).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.readme import snippet


def readme_snippet() -> str:
    """The JavaScript between the node-enqueue markers of README.md."""
    return snippet("node-enqueue", "js")


def database_url(dsn: str) -> str:
    """A postgresql:// URL, which node-postgres takes, for a libpq DSN of either form."""
    params = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    user = quote(params.get("user", ""), safe="")
    password = quote(params.get("password", ""), safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = params.get("host", "localhost")
    port = params.get("port", "5432")
    return f"postgresql://{credentials}{host}:{port}/{quote(params['dbname'], safe='')}"


def test_the_readme_has_the_node_snippet() -> None:
    snippet = readme_snippet()
    assert "pgjobs.enqueue(" in snippet
    assert 'import pg from "pg"' in snippet


@pytest.mark.slow  # installs `pg` from the npm registry and starts node
def test_the_readme_node_snippet_enqueues_a_job(
    dsn: str, conn: psycopg.Connection[tuple[object, ...]], tmp_path: Path
) -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are not installed (apt-get install nodejs npm; CI installs them)")
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "pg"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
        timeout=240,
    )
    script = tmp_path / "enqueue.mjs"
    script.write_text(readme_snippet(), encoding="utf-8")

    ran = subprocess.run(
        [node, str(script)],
        cwd=tmp_path,
        env={"PATH": str(Path(node).parent), "DATABASE_URL": database_url(dsn)},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert ran.returncode == 0, ran.stdout + ran.stderr
    rows = conn.execute(
        "SELECT id, task, args, queue, priority, status FROM pgjobs.jobs"
    ).fetchall()
    assert len(rows) == 1, rows
    job_id, *job = rows[0]
    assert job == ["myapp.jobs.send_welcome", {"user_id": 42}, "emails", 1, "queued"]
    assert ran.stdout.strip() == f"enqueued job {job_id}"
