"""Named queries, read from pgjobs/sql/*.sql with importlib.resources."""

from __future__ import annotations

import functools
import importlib.resources
import re

# `:name` placeholders, but not `::type` casts. The .sql files use this neutral
# style so one file serves psycopg (`%(name)s`) and SQLAlchemy text() alike.
_PLACEHOLDER = re.compile(r"(?<![:\w]):([A-Za-z_][A-Za-z0-9_]*)")


@functools.cache
def text(name: str) -> str:
    """The query `name` as written, with `:param` placeholders (for SQLAlchemy)."""
    resource = importlib.resources.files("pgjobs") / "sql" / f"{name}.sql"
    return resource.read_text(encoding="utf-8")


@functools.cache
def psycopg(name: str) -> str:
    """The query `name` with psycopg `%(param)s` placeholders."""
    return _PLACEHOLDER.sub(r"%(\1)s", text(name).replace("%", "%%"))
