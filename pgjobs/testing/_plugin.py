"""The pytest plugin: a migrated database per test session, your App on it, and drain.

pytest loads it through the `pytest11` entry point named "pgjobs" in every
run where pgjobs is installed, whether the tests use pgjobs or not. So
loading it only registers an ini option and the fixtures: the server is
chosen, a database created (or the embedded PostgreSQL started) when a test
first asks for one of them, and the modules that migrate are imported then.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pgjobs._app import App
from pgjobs._loader import load_app
from pgjobs.errors import ConfigurationError
from pgjobs.testing import _database
from pgjobs.testing._drain import drain
from pgjobs.testing._memory import MemoryDrain
from pgjobs.worker import Worker

#: The ini option that names the App under test, as `module:attribute`.
APP_OPTION = "pgjobs_app"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the `pgjobs_app` ini option."""
    parser.addini(
        APP_OPTION,
        help="the App the pgjobs_app fixture points at the test database, as module:attribute "
        '(e.g. "myapp.jobs:app")',
        default="",
    )


@pytest.fixture(scope="session")
def pgjobs_database() -> Iterator[str]:
    """The DSN of a database created for this session and migrated; dropped at the end.

    It is made on the server of $PGJOBS_TEST_DSN, else $PGJOBS_DSN, else
    $DATABASE_URL (whose role needs CREATEDB), else on an embedded PostgreSQL
    (the [embedded] extra) started for the session. Tables keep what earlier
    tests wrote: use pgjobs_dsn for a clean start.
    """
    with _database.server() as server, _database.migrated_database(server) as dsn:
        yield dsn


@pytest.fixture
def pgjobs_dsn(pgjobs_database: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The session's database with every pgjobs table emptied, also set as $PGJOBS_DSN."""
    _database.empty_tables(pgjobs_database)
    # An App built without a DSN, and a `python -m pgjobs` subprocess, find it here.
    monkeypatch.setenv("PGJOBS_DSN", pgjobs_database)
    return pgjobs_database


@pytest.fixture
def pgjobs_app(request: pytest.FixtureRequest) -> Iterator[App]:
    """Your App (the `pgjobs_app` ini option), on pgjobs_dsn for the test; its DSN restored after.

    Instead of the ini option, define a `pgjobs_app` fixture in your
    conftest.py that yields inside `pgjobs.testing.use_database(app, pgjobs_dsn)`.
    """
    reference = request.config.getini(APP_OPTION)
    if not reference:
        raise ConfigurationError(
            "the pgjobs_app fixture does not know your App. Name it in your pytest "
            'configuration: pgjobs_app = "myapp.jobs:app" (under [tool.pytest.ini_options] '
            "in pyproject.toml, or [pytest] in pytest.ini), or define a pgjobs_app fixture "
            "in conftest.py that yields inside pgjobs.testing.use_database(app, pgjobs_dsn)."
        )
    app = load_app(reference)
    # Asked for only now, so that a missing option costs no database.
    dsn: str = request.getfixturevalue("pgjobs_dsn")
    with _database.use_database(app, dsn):
        yield app


@pytest.fixture
def pgjobs_drain(pgjobs_app: App) -> Callable[..., Worker | MemoryDrain]:
    """`pgjobs.testing.drain` bound to pgjobs_app: `pgjobs_drain()` runs the jobs that are due.

    Keyword arguments are WorkerConfig fields, and `timeout`, as for drain.
    """

    def run(**config: Any) -> Worker | MemoryDrain:
        return drain(pgjobs_app, **config)

    return run
