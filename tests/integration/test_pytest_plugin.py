"""The pytest plugin from a user's project (pytester), and the helpers behind it, in-process."""

from __future__ import annotations

import pytest

import pgjobs
from pgjobs.testing import assert_enqueued, use_database
from pgjobs.testing._database import empty_tables

pytest_plugins = ["pytester"]

# -- a user's project, run by a pytest of its own ----------------------------

#: The user's App. Its DSN names a server that does not exist: a job that
#: reached it instead of the test database would fail the test.
SAMPLE_APP = """
import pgjobs

app = pgjobs.App(dsn="postgresql://nobody@db.invalid/production")


@app.task
def add(a: int, b: int) -> int:
    return a + b


@app.task(queue="emails")
def send(user_id: int) -> None:
    pass
"""

SAMPLE_INI = """
[tool.pytest.ini_options]
pgjobs_app = "sampleapp:app"
filterwarnings = ["error"]
"""

SAMPLE_TESTS = """
import os

import psycopg

from pgjobs.testing import assert_enqueued
from sampleapp import add, app, send


def test_enqueue_check_and_drain(pgjobs_app, pgjobs_drain, pgjobs_dsn):
    assert pgjobs_app is app
    assert os.environ["PGJOBS_DSN"] == pgjobs_dsn
    job_id = add.enqueue(2, 3)
    send.enqueue(user_id=7)
    (job,) = assert_enqueued(add, {"a": 2, "b": 3}, count=1)
    assert job["id"] == job_id
    assert_enqueued("sampleapp.send", {"user_id": 7})
    assert pgjobs_drain().completed == 2
    assert_enqueued(add, count=0)
    with psycopg.connect(pgjobs_dsn) as conn:
        query = "SELECT result FROM pgjobs.jobs WHERE id = %s"
        assert conn.execute(query, (job_id,)).fetchone() == (5,)


def test_each_test_starts_with_no_jobs(pgjobs_app):
    assert_enqueued(add, count=0)
    assert add.enqueue(1, 1) == 1


def test_after_a_test_the_app_has_its_own_dsn_again():
    assert app.dsn == "postgresql://nobody@db.invalid/production"
    assert "PGJOBS_DSN" not in os.environ
"""

SAMPLE_FAILURE = """
from pgjobs.testing import assert_enqueued
from sampleapp import add, send


def test_a_missing_job(pgjobs_app):
    add.enqueue(1, 2)
    send.enqueue(3)
    assert_enqueued(add, {"a": 1}, count=2)
"""


def _project(pytester: pytest.Pytester, **tests: str) -> None:
    pytester.makepyfile(sampleapp=SAMPLE_APP, **tests)
    pytester.makepyprojecttoml(SAMPLE_INI)


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, server_dsn: str):
    """Run pytest on the sample project in a subprocess, with the test server configured."""
    monkeypatch.setenv("PGJOBS_TEST_DSN", server_dsn)
    for var in ("PGJOBS_DSN", "DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    # Until pgjobs is installed again, its pytest11 entry point may be
    # missing: name the plugin, and load no entry point, which would register
    # the same module a second time once it is there.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")

    def run_pytest(*args: str) -> pytest.RunResult:
        return pytester.runpytest_subprocess("-p", "pgjobs.testing._plugin", *args, timeout=120)

    return run_pytest


@pytest.mark.slow
def test_a_project_enqueues_checks_and_drains_with_the_fixtures(pytester, run):
    _project(pytester, test_sample=SAMPLE_TESTS)
    result = run("-v")
    result.assert_outcomes(passed=3)


@pytest.mark.slow
def test_a_failed_assert_enqueued_lists_the_queued_jobs(pytester, run):
    _project(pytester, test_failure=SAMPLE_FAILURE)
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E   *AssertionError: expected 2 queued jobs of task 'sampleapp.add' "
            'with args containing {"a": 1}, found 1.',
            "E   *Queued jobs (2):",
            'E   *  #1 sampleapp.add {"a": 1, "b": 2} queue=default',
            'E   *  #2 sampleapp.send {"user_id": 3} queue=emails',
        ]
    )


@pytest.mark.slow
def test_pgjobs_app_without_the_ini_option_says_how_to_name_the_app(pytester, run):
    pytester.makepyfile(
        sampleapp=SAMPLE_APP,
        test_sample="def test_it(pgjobs_app):\n    pass\n",
    )
    result = run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ['*the pgjobs_app fixture does not know your App*pgjobs_app = "myapp.jobs:app"*']
    )


@pytest.mark.slow
def test_the_plugin_costs_a_project_that_uses_no_fixture_nothing(pytester, run, monkeypatch):
    # A server that cannot answer: a plugin that connected at load would fail the run.
    monkeypatch.setenv("PGJOBS_TEST_DSN", "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
    pytester.makepyfile(
        test_plain="""
        import sys

        def test_nothing_heavy_is_loaded(request):
            assert request.config.pluginmanager.has_plugin("pgjobs.testing._plugin")
            for module in ("alembic", "sqlalchemy", "pgserver"):
                assert module not in sys.modules, module
        """
    )
    result = run()
    result.assert_outcomes(passed=1)


@pytest.mark.slow
def test_without_a_configured_server_the_embedded_one_serves(pytester, run, monkeypatch):
    monkeypatch.delenv("PGJOBS_TEST_DSN")
    _project(
        pytester,
        test_embedded="""
        from psycopg.conninfo import conninfo_to_dict

        from pgjobs.testing import assert_enqueued
        from sampleapp import add

        def test_it(pgjobs_app, pgjobs_drain, pgjobs_dsn):
            # A Unix socket in the embedded server's directory, not a TCP address.
            assert conninfo_to_dict(pgjobs_dsn)["host"].startswith("/")
            add.enqueue(1, 2)
            assert_enqueued(add, {"a": 1, "b": 2}, count=1)
            assert pgjobs_drain().completed == 1
        """,
    )
    result = run()
    result.assert_outcomes(passed=1)


@pytest.mark.slow
def test_without_a_server_or_the_embedded_one_the_error_says_what_to_do(pytester, run, monkeypatch):
    monkeypatch.delenv("PGJOBS_TEST_DSN")
    # The sample project's directory comes first on the subprocess's path.
    pytester.makepyfile(pgserver="raise ImportError('pgserver is not installed')")
    pytester.makepyfile(test_sample="def test_it(pgjobs_dsn):\n    pass\n")
    result = run()
    result.assert_outcomes(errors=1)
    output = " ".join(result.stdout.str().split())
    assert (
        "ConfigurationError: no PostgreSQL server for the tests: none of PGJOBS_TEST_DSN, "
        "PGJOBS_DSN, DATABASE_URL is set, and the embedded server is not installed. "
        "Set PGJOBS_TEST_DSN to a PostgreSQL server on which the tests may create and drop "
        "databases, for example postgresql://postgres@127.0.0.1:5432/postgres; "
        "or install the embedded one: pip install 'pgjobs[embedded]'"
    ) in output


# -- the helpers, in this process ----------------------------------------------


@pytest.fixture
def app(dsn):
    application = pgjobs.App(dsn)
    yield application
    application.close()


def test_assert_enqueued_matches_task_args_and_count(app, dsn):
    @app.task(name="greet")
    def greet(name: str, loud: bool = False) -> None:
        pass

    first = greet.enqueue("ada")
    greet.enqueue("bob", loud=True)
    greet.options(delay=3600).enqueue("ada")  # later, but queued all the same

    jobs = assert_enqueued(greet, {"name": "ada"}, count=2)
    assert jobs[0]["id"] == first
    assert jobs[0]["args"] == {"name": "ada"}
    assert len(assert_enqueued("greet", dsn=dsn)) == 3
    assert_enqueued(greet, {"name": "bob", "loud": True})
    assert_enqueued(greet, {"loud": 1}, count=0)  # jsonb tells 1 from true
    assert_enqueued(greet, {"nickname": "ada"}, count=0)


def test_assert_enqueued_by_name_looks_in_pgjobs_dsn(app, dsn, monkeypatch):
    @app.task(name="greeter")
    def greeter(n: int) -> None:
        pass

    greeter.enqueue(1)
    monkeypatch.setenv("PGJOBS_DSN", dsn)
    assert_enqueued("greeter", {"n": 1}, count=1)
    monkeypatch.delenv("PGJOBS_DSN")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(pgjobs.errors.ConfigurationError, match="no database configured"):
        assert_enqueued("greeter")


def test_a_failed_assert_enqueued_says_what_is_queued(app):
    @app.task(name="one")
    def one(n: int) -> None:
        pass

    with pytest.raises(AssertionError) as failure:
        assert_enqueued(one)
    assert str(failure.value).splitlines() == [
        "expected a queued job of task 'one', found none.",
        "No job is queued.",
    ]
    one.enqueue(1)
    with pytest.raises(AssertionError) as failure:
        assert_enqueued(one, count=0)
    assert str(failure.value).splitlines() == [
        "expected 0 queued jobs of task 'one', found 1.",
        "Queued jobs (1):",
        '  #1 one {"n": 1} queue=default',
    ]


def test_assert_enqueued_refuses_a_negative_count(app):
    with pytest.raises(pgjobs.errors.ConfigurationError, match="count must be 0 or more"):
        assert_enqueued("anything", count=-1, dsn=app.dsn)


def test_empty_tables_leaves_no_row_and_restarts_ids(app, dsn, conn):
    @app.task(name="noop")
    def noop() -> None:
        pass

    noop.enqueue()
    conn.execute("INSERT INTO pgjobs.queues (name) VALUES ('q')")
    windows = conn.execute("SELECT revision, oldest_code FROM pgjobs.schema_window").fetchall()
    assert windows  # a row per revision migrated to, from 0015 on
    empty_tables(dsn)
    counts = conn.execute(
        "SELECT (SELECT count(*) FROM pgjobs.jobs), (SELECT count(*) FROM pgjobs.queues),"
        " (SELECT count(*) FROM pgjobs.alembic_version)"
    ).fetchone()
    assert counts == (0, 0, 1)
    # The schema's own records stay.
    assert conn.execute("SELECT revision, oldest_code FROM pgjobs.schema_window").fetchall() == (
        windows
    )
    assert noop.enqueue() == 1


def test_use_database_points_the_app_there_and_back(dsn, conn):
    elsewhere = pgjobs.App("postgresql://nobody@db.invalid/production")
    unset = pgjobs.App()

    @elsewhere.task(name="noop")
    def noop() -> None:
        pass

    with use_database(elsewhere, dsn) as inside, use_database(unset, dsn):
        assert inside is elsewhere
        assert noop.enqueue() == 1
        assert unset.dsn == dsn
    assert elsewhere.dsn == "postgresql://nobody@db.invalid/production"
    assert elsewhere._pool is None  # closed, with its connections to the test database
    assert unset._dsn is None  # still read from the environment when needed
