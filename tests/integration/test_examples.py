"""Every script in examples/ runs end to end against a real PostgreSQL, twice in a row."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.py"))

#: A line each example prints when it did its job. A new example without an
#: entry here must still exit 0 and print something.
EXPECTED = {
    "quickstart.py": "succeeded: 'Hello, pgjobs!'",
    "psycopg_transaction.py": "after commit: 1 job for user",
    "sqlalchemy_session.py": "after commit: 1 job for order",
    "fastapi_app.py": "after the worker: succeeded",
    "middleware_routing.py": "reports.weekly: succeeded {'day': '2026-01-05', 'report': 'weekly'}",
    "tracing.py": "POST /orders > send example-tracing > process example-tracing > render receipt",
    "django_app.py": "after the worker: SUCCESSFUL 'welcome sent to ada@example.com'",
    "transactional.py": "order 7: succeeded, 1 charge row(s)",
    "job_control.py": "result: {'url': '/exports/7'}",
    "flow_control.py": "exports: at most 2 at once",
    "workflows.py": "chain: stored 'example.com'",
    "circuit_breaker.py": "breaker: open after",
}
ALSO_EXPECTED = {
    "psycopg_transaction.py": "after rollback: 0 jobs for user",
    "sqlalchemy_session.py": "after rollback: 0 jobs for order",
    "fastapi_app.py": "declined order: 402",
    "middleware_routing.py": "reports.monthly: succeeded {'skipped': 'reports.monthly'}",
    "tracing.py": '"correlation_id": "req-8f41"',
    "django_app.py": "after rollback: 0 jobs for nobody@example.com",
    "transactional.py": "order 13: failed, 0 charge row(s) (card declined for order 13)",
    "job_control.py": "chunks: cancelled by example",
    "flow_control.py": (
        "reports: at most 1 per customer at once, 3 in all\ncalls: 15 started over 1.3 s or more"
    ),
    "workflows.py": (
        "group with a failure: callback cancelled, clean-up ran after 2 images (1 resized)"
    ),
    "circuit_breaker.py": "breaker: closed,",
}


def test_examples_are_found() -> None:
    names = {path.name for path in EXAMPLES}
    assert set(EXPECTED) <= names


@pytest.mark.slow  # each example is a process of its own
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_runs(path: Path, dsn: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PGJOBS_DSN"] = dsn
    # The second run meets the first one's jobs and tables: examples must not
    # assume an empty pgjobs.jobs, nor create their tables only once.
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, str(path)],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.strip(), result.stderr
        for expected in (EXPECTED.get(path.name), ALSO_EXPECTED.get(path.name)):
            if expected is not None:
                assert expected in result.stdout, result.stdout + result.stderr
