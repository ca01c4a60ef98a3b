"""Named queries load and convert; the code's schema revision is Alembic's head."""

import importlib.resources

import pytest

from pgjobs import _dsn, _migrate, _sql
from pgjobs.errors import ConfigurationError, SchemaVersionError


def test_placeholders_convert_but_casts_stay():
    converted = _sql._PLACEHOLDER.sub(r"%(\1)s", "SELECT :a::text, CAST(:b AS int), x::jsonb")
    assert converted == "SELECT %(a)s::text, CAST(%(b)s AS int), x::jsonb"


def test_every_query_file_loads_for_both_drivers():
    names = [
        f.name.removesuffix(".sql")
        for f in (importlib.resources.files("pgjobs") / "sql").iterdir()
        if f.name.endswith(".sql")
    ]
    assert "claim" in names
    for name in names:
        assert _sql.text(name).strip()
        assert "%(" in _sql.psycopg(name) or ":" not in _sql.text(name)


def test_schema_revision_is_the_migrations_head():
    assert _migrate.head() == _migrate.SCHEMA_REVISION


def test_schema_mismatches_say_what_to_do():
    with pytest.raises(SchemaVersionError, match="python -m pgjobs migrate"):
        _migrate.check_revision(None)
    with pytest.raises(SchemaVersionError, match="Upgrade the pgjobs package"):
        _migrate.check_revision("9999")
    _migrate.check_revision(_migrate.SCHEMA_REVISION)


def test_dsn_normalising_and_redaction(monkeypatch):
    assert _dsn.normalise("postgresql+psycopg://u@h/db") == "postgresql://u@h/db"
    assert _dsn.redact("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"
    assert "secret" not in _dsn.redact("host=h password=secret")
    with pytest.raises(ConfigurationError, match="malformed DSN"):
        _dsn.normalise("host='unterminated")
    monkeypatch.delenv("PGJOBS_DSN", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://x@y/z")
    assert _dsn.resolve() == "postgresql://x@y/z"
    monkeypatch.delenv("DATABASE_URL")
    with pytest.raises(ConfigurationError, match="PGJOBS_DSN"):
        _dsn.require()
