"""Developer sessions: nox -s tests | lint | typing | migrations | examples | django6."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typing"]
nox.options.reuse_existing_virtualenvs = True

SOURCES = ["pgjobs", "tests", "examples", "migrations", "noxfile.py"]


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite, with coverage."""
    session.install("-e", ".[test]")
    session.run("pytest", "--cov=pgjobs", "--cov-report=term", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """The layer contracts (import-linter), ruff check and ruff format --check."""
    session.install("-e", ".", "ruff", "import-linter>=2.1")
    session.run("lint-imports", "--no-cache")
    session.run("ruff", "check", *SOURCES)
    session.run("ruff", "format", "--check", *SOURCES)


@nox.session
def typing(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", ".[test]")
    session.run("mypy", "pgjobs")


@nox.session
def migrations(session: nox.Session) -> None:
    """The migration tests: offline SQL, idempotence, packaged wheel."""
    session.install("-e", ".[test]")
    session.run("pytest", "-k", "migrat", *session.posargs)


@nox.session
def examples(session: nox.Session) -> None:
    """Every file in examples/ runs."""
    session.install("-e", ".[test]")
    session.run("pytest", "tests/integration/test_examples.py", *session.posargs)


#: The Django backend's tests: the main suite runs them on Python 3.11 with the
#: django-tasks backport; the django6 session on Django 6's own django.tasks.
DJANGO_TESTS = [
    "tests/unit/test_django_priority.py",
    "tests/integration/test_django.py",
    "tests/acceptance/test_django_worker.py",
]


@nox.session(python="3.12")
def django6(session: nox.Session) -> None:
    """pgjobs.contrib.django on Django 6's built-in django.tasks (Python 3.12), real PostgreSQL.

    Only what those tests need is installed: no backport, so a test that
    passed through django_tasks by mistake fails to import here.
    """
    session.install("-e", ".", "django>=6,<7", "pytest>=8", "pytest-timeout>=2.3")
    session.run(
        "python",
        "-c",
        "import importlib.util, django; "
        "assert importlib.util.find_spec('django_tasks') is None, 'the backport is installed'; "
        "import django.tasks; print('Django', django.get_version(), 'with django.tasks')",
    )
    session.run("pytest", *DJANGO_TESTS, *session.posargs)
    session.run("pytest", "tests/integration/test_examples.py", "-k", "django_app")


#: The peers the bench session compares against. They are installed into the
#: session's own virtualenv only, never as dependencies of pgjobs.
BENCH_PEERS = ["procrastinate", "pgqueuer", "chancy"]


@nox.session
def bench(session: nox.Session) -> None:
    """pgjobs against the raw-SQL ceiling and the Python peers, in one run.

    Extra arguments go to `python -m pgjobs bench`, for example
    `nox -s bench -- --dsn postgresql://postgres@127.0.0.1/postgres --jobs 20000`.
    A peer that fails to install is reported and left out, not fatal.
    """
    session.install("-e", ".[embedded]")
    usable = []
    for peer in BENCH_PEERS:
        try:
            session.install(peer, silent=True)
        except Exception:  # nox raises its own CommandFailed; any failure means "skip it"
            session.warn(f"bench: could not install {peer}; it is left out of the comparison")
            continue
        usable.append(peer)
    # tests.bench is `python -m pgjobs` with the peers' adapters registered:
    # they live in tests/bench/peers.py and never ship in the wheel.
    session.run(
        "python",
        "-m",
        "tests.bench",
        "--log-level",
        "warning",
        "bench",
        "--systems",
        ",".join(["pgjobs", "raw", *usable]),
        *session.posargs,
    )
