"""The layers declared in pyproject.toml hold, name every core module, and catch a new cycle."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

from tests.conftest import REPO

#: The subpackages that sit over the core, and the public modules that face
#: users (they may import a layer: `pgjobs.Worker`, `pgjobs.testing.drain`).
LAYERS = {
    "pgjobs.cli",
    "pgjobs.web",
    "pgjobs.worker",
    "pgjobs.demo",
    "pgjobs.bench",
    "pgjobs.contrib",
}
FACADES = {"pgjobs", "pgjobs.__main__", "pgjobs.testing"}


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    contracts: list[dict[str, object]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with the repository's contracts, on the package found under `root`."""
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports, "lint-imports is missing: pip install -e '.[test]'"
    return subprocess.run(
        [lint_imports, str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_core_contract_names_every_core_module() -> None:
    # A core module left out of the list would escape the "core imports no
    # layer" contract: every module directly under pgjobs that is neither a
    # layer nor a facade must be named there.
    graph = grimp.build_graph("pgjobs")
    core = {m for m in graph.find_children("pgjobs") if m not in LAYERS and m not in FACADES}
    (forbidden,) = [c for c in _contracts() if c["type"] == "forbidden"]
    assert set(forbidden["source_modules"]) == core  # type: ignore[arg-type]
    assert set(forbidden["forbidden_modules"]) == LAYERS  # type: ignore[arg-type]


def test_the_contracts_hold() -> None:
    result = _lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _copy_with(tmp_path: Path, module: str, line: str) -> Path:
    """A copy of the package with `line` added at the end of `module`'s file."""
    shutil.copytree(
        REPO / "pgjobs", tmp_path / "pgjobs", ignore=shutil.ignore_patterns("__pycache__")
    )
    path = tmp_path / "pgjobs" / module
    path.write_text(path.read_text() + f"\n{line}\n")
    return tmp_path


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # _app imports _retry: _retry importing _app back closes a cycle.
        ("_retry.py", "from pgjobs import _app  # noqa", "No import cycles"),
        # A cycle that exists only for the type checker is a cycle too.
        (
            "_job.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pgjobs import _app",
            "No import cycles",
        ),
        ("web/_auth.py", "import pgjobs.worker  # noqa", "over the dashboard and the worker"),
        ("_options.py", "import pgjobs.web  # noqa", "The core imports none"),
        ("worker/_rescuer.py", "import pgjobs.cli  # noqa", "over the dashboard and the worker"),
    ],
)
def test_a_broken_layer_or_a_new_cycle_fails(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    result = _lint_imports(_copy_with(tmp_path, module, line))
    assert result.returncode != 0, result.stdout
    assert broken in result.stdout.split("Broken contracts")[1], result.stdout
