"""The README's in-memory example runs as written, with no database anywhere."""

from __future__ import annotations

from tests.readme import snippet


def test_the_readme_in_memory_example_runs(monkeypatch) -> None:
    for name in ("PGJOBS_DSN", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    code = snippet("in-memory", "python")
    # As a script: a task's name cannot come from __main__, so the example names it.
    namespace: dict[str, object] = {"__name__": "__main__"}
    exec(compile(code, "README.md (in-memory)", "exec"), namespace)  # noqa: S102
    store = namespace["store"]
    assert len(store.jobs) == 1  # type: ignore[attr-defined]
