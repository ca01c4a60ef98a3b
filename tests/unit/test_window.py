"""The compatible window: the schemas code runs on, and the workers a migration breaks."""

from __future__ import annotations

import importlib.util

import pytest

from pgjobs import _migrate, _window
from pgjobs._window import Code, RunningWorker, Schema
from pgjobs.errors import ConfigurationError


def test_code_runs_on_its_revision_and_back_to_its_oldest_schema():
    code = Code("0017", oldest_schema="0016")
    assert _window.problem(code, Schema("0017", "0016")) is None
    assert _window.problem(code, Schema("0016", "0016")) is None  # newer code, older schema
    too_old = _window.problem(code, Schema("0015", "0014"))
    assert too_old is not None
    assert "0015" in too_old
    assert "0016 or newer" in too_old
    assert "python -m pgjobs migrate" in too_old


def test_a_newer_schema_is_run_on_only_when_it_declares_this_code_still_works():
    code = Code("0015", oldest_schema="0015")
    assert _window.problem(code, Schema("0016", "0015")) is None  # an expand
    contract = _window.problem(code, Schema("0016", "0016"))
    assert contract is not None
    # Both revisions, and the fix.
    assert "at revision 0016" in contract
    assert "this code is revision 0015" in contract
    assert "Upgrade the pgjobs package" in contract
    # A revision before 0015 declares nothing: only its own code fits.
    assert _window.problem(Code("0013", "0013"), Schema("0014")) is not None


def test_no_schema_says_to_migrate():
    message = _window.problem(_migrate.CODE, None)
    assert message is not None
    assert "no pgjobs schema" in message


def _worker(code_revision: str | None, wid: int = 1) -> RunningWorker:
    return RunningWorker(wid, "h", 100 + wid, code_revision, "0.1.0" if code_revision else None)


def test_migrate_leaves_out_only_workers_older_than_the_targets_oldest_code():
    workers = [_worker("0015", 1), _worker("0016", 2)]
    assert _window.outside(workers, "0015", Schema("0016", "0015")) == []
    left = _window.outside(workers, "0016", Schema("0017", "0016"))
    assert [w.id for w in left] == [1]
    message = _window.refusal(left, "0016", Schema("0017", "0016"))
    assert "worker 1 (h, pid 101): pgjobs 0.1.0, code revision 0015" in message
    assert "--force" in message
    assert "from 0016 to 0017" in message


def test_a_worker_that_recorded_no_revision_runs_the_databases_or_0014_at_most():
    old = _worker(None)
    assert old.assumed_revision("0013") == "0013"
    assert old.assumed_revision("0016") == "0014"
    assert _window.outside([old], "0014", Schema("0015", "0014")) == []
    assert _window.outside([old], "0015", Schema("0016", "0015")) == [old]
    assert "assumed" in old.describe("0015")


def _migrations() -> dict[str, object]:
    modules = {}
    for path in sorted((_migrate.migrations_dir() / "versions").glob("*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        modules[module.revision] = module
    return modules


def test_every_migration_from_0015_declares_a_window_that_never_moves_back():
    modules = _migrations()
    declared = [r for r in sorted(modules) if r >= _window.FIRST_WINDOW]
    assert declared, "no migration declares a window"
    previous = "0000"
    for revision in declared:
        oldest = getattr(modules[revision], "oldest_code", None)
        assert isinstance(oldest, str), f"{revision} declares no oldest_code"
        # At most itself, never older than what the revision before it declared.
        assert previous <= oldest <= revision, revision
        previous = oldest


def test_this_codes_window_is_inside_the_migrations():
    assert _migrate.OLDEST_SCHEMA <= _migrate.SCHEMA_REVISION
    assert _migrate.OLDEST_SCHEMA >= _window.FIRST_WINDOW
    assert _migrate.target().revision == _migrate.SCHEMA_REVISION


def test_a_migrations_dir_that_is_none_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv(_migrate.MIGRATIONS_DIR_ENV, str(tmp_path))
    with pytest.raises(ConfigurationError, match=r"no env\.py"):
        _migrate.migrations_dir()
