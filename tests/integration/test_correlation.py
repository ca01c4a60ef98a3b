"""Correlation ids on a real PostgreSQL: in a handler's own log lines, inherited by child jobs."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import structlog
import structlog.testing

import pgjobs
from pgjobs.errors import ConfigurationError
from pgjobs.testing import drain
from tests.conftest import REPO


@pytest.fixture
def app(dsn: str) -> Iterator[pgjobs.App]:
    application = pgjobs.App(dsn)
    yield application
    application.close()


@pytest.fixture
def events() -> Iterator[list[dict[str, Any]]]:
    """Log events as an application that merges structlog's contextvars sees them."""
    was_configured = structlog.is_configured()
    before = structlog.get_config()
    capture = structlog.testing.LogCapture()
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, capture],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        cache_logger_on_first_use=False,
    )
    try:
        yield capture.entries
    finally:
        if was_configured:
            structlog.configure(**before)
        else:
            structlog.reset_defaults()


def lines(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == name]


def test_the_correlation_id_is_in_the_handlers_lines_and_children_inherit_it(
    app: pgjobs.App, events: list[dict[str, Any]], conn: psycopg.Connection[Any]
) -> None:
    log = structlog.get_logger("myapp")

    @app.task(name="corr.child")
    def child(n: int) -> None:
        log.info("child.ran", n=n)

    @app.task(name="corr.parent")
    async def parent() -> None:
        log.info("parent.ran")
        await child.enqueue_async(1)  # inherits
        await child.options(correlation_id="its-own").enqueue_async(2)  # keeps its own

    @app.task(name="corr.sync_parent")
    def sync_parent() -> None:  # runs in a thread: the id goes with the context
        log.info("sync_parent.ran")
        child.enqueue(3)

    parent_id = parent.options(correlation_id="req-7f3a").enqueue()
    sync_id = app.enqueue("corr.sync_parent", correlation_id="req-sync")
    drain(app)
    drain(app)  # the children

    assert [e["correlation_id"] for e in lines(events, "parent.ran")] == ["req-7f3a"]
    assert [e["correlation_id"] for e in lines(events, "sync_parent.ran")] == ["req-sync"]
    ran = {e["n"]: e["correlation_id"] for e in lines(events, "child.ran")}
    assert ran == {1: "req-7f3a", 2: "its-own", 3: "req-sync"}
    stored = dict(
        conn.execute(
            "SELECT (args->>'n')::int, meta->>'correlation_id' FROM pgjobs.jobs"
            " WHERE task = 'corr.child'"
        ).fetchall()
    )
    assert stored == ran
    parents = dict(conn.execute("SELECT id, meta->>'correlation_id' FROM pgjobs.jobs").fetchall())
    assert (parents[parent_id], parents[sync_id]) == ("req-7f3a", "req-sync")
    # Bound for the run only: nothing is left in the test's own context.
    assert "correlation_id" not in structlog.contextvars.get_contextvars()


def test_without_an_id_the_job_id_is_the_correlation_id_and_its_children_carry_it(
    app: pgjobs.App, events: list[dict[str, Any]], conn: psycopg.Connection[Any]
) -> None:
    log = structlog.get_logger("myapp")

    @app.task(name="corr.leaf")
    def leaf() -> None:
        log.info("leaf.ran")

    @app.task(name="corr.root", max_attempts=1)
    def root() -> None:
        log.info("root.ran")
        leaf.enqueue()
        raise RuntimeError("after the enqueue")

    root_id = root.enqueue()
    drain(app)
    drain(app)
    assert [e["correlation_id"] for e in lines(events, "root.ran")] == [str(root_id)]
    assert [e["correlation_id"] for e in lines(events, "leaf.ran")] == [str(root_id)]
    # pgjobs' own job events of the run carry it too.
    (failed,) = lines(events, "job.failed")
    assert failed["correlation_id"] == str(root_id)
    # A job enqueued outside any run stores no id: its meta stays as given.
    meta = conn.execute("SELECT meta FROM pgjobs.jobs WHERE id = %s", (root_id,)).fetchone()
    assert meta == ({},)


@pytest.mark.parametrize(
    ("given", "said"),
    [
        (42, "correlation_id must be a string, got int 42"),
        ("x" * 129, "correlation_id must be 1 to 128 characters"),
        ("", "correlation_id must be 1 to 128 characters"),
        ("a\x00b", "correlation_id must be 1 to 128 characters with no NUL"),
    ],
)
def test_a_bad_correlation_id_is_refused_before_anything_is_written(
    app: pgjobs.App, conn: psycopg.Connection[Any], given: Any, said: str
) -> None:
    @app.task(name="corr.any")
    def anything() -> None:
        pass

    with pytest.raises(ConfigurationError, match=said):
        anything.options(correlation_id=given).enqueue()
    with pytest.raises(ConfigurationError, match=said):
        app.enqueue("corr.any", correlation_id=given)
    assert conn.execute("SELECT count(*) FROM pgjobs.jobs").fetchone() == (0,)


def run_python(code: str, dsn: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "PGJOBS_DSN": dsn, "PYTHONPATH": str(REPO), **env},
        check=False,
    )


@pytest.mark.slow  # a Python process of its own
def test_enqueue_and_a_worker_run_without_importing_opentelemetry(dsn: str) -> None:
    # opentelemetry is installed here (the test extra): pgjobs must still not load it.
    done = run_python(
        """
        import json, sys
        import pgjobs
        from pgjobs import _log
        from pgjobs.testing import drain

        _log.configure("info", "json")
        app = pgjobs.App()

        @app.task(name="plain.job")
        def job(n: int) -> None:
            import structlog
            structlog.get_logger("myapp").info("handler.line", n=n)

        job.options(correlation_id="from-the-request").enqueue(1)
        app.enqueue_many([job.job(2)])
        drain(app)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")
        print(json.dumps({"loaded": loaded}))
        """,
        dsn,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"loaded": []}
    # The real JSON log of the CLI's configuration: the handler's own line has the id.
    handler_lines = [
        json.loads(line) for line in done.stderr.splitlines() if '"handler.line"' in line
    ]
    assert {line["n"]: line["correlation_id"] for line in handler_lines} == {
        1: "from-the-request",
        2: "2",
    }


@pytest.mark.slow  # a Python process of its own
@pytest.mark.parametrize(("setting", "traced"), [("", True), ("off", False)])
def test_pgjobs_tracing_off_keeps_a_configured_provider_from_tracing_jobs(
    dsn: str, setting: str, traced: bool
) -> None:
    pytest.importorskip("opentelemetry.sdk")
    done = run_python(
        """
        import json
        import psycopg
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        import pgjobs
        trace.set_tracer_provider(TracerProvider())
        app = pgjobs.App(strict=False)
        job_id = app.enqueue("elsewhere.task")
        with psycopg.connect(app.dsn) as conn:
            meta = conn.execute("SELECT meta FROM pgjobs.jobs WHERE id = %s", (job_id,)).fetchone()
        print(json.dumps(sorted(meta[0])))
        """,
        dsn,
        PGJOBS_TRACING=setting,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == (["trace"] if traced else [])
