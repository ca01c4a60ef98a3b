"""Named queries load and convert; no SQL hides in the library's code; the schema revision."""

import ast
import importlib.resources
import re
from pathlib import Path

import pytest

from pgjobs import _dsn, _migrate, _sql
from pgjobs._window import Schema
from pgjobs.errors import ConfigurationError, SchemaVersionError

PACKAGE = Path(_sql.__file__).parent


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            "SELECT :a::text, CAST(:b AS int), x::jsonb",
            "SELECT %(a)s::text, CAST(%(b)s AS int), x::jsonb",
        ),
        ("SELECT :a, :a, :b_2", "SELECT %(a)s, %(a)s, %(b_2)s"),
        (
            "SELECT 1 -- see :foo\nFROM t WHERE x = :x",
            "SELECT 1 -- see :foo\nFROM t WHERE x = %(x)s",
        ),
        ("SELECT 1 -- :foo", "SELECT 1 -- :foo"),
        ("SELECT /* :foo */ :x", "SELECT /* :foo */ %(x)s"),
        ("SELECT /* a /* nested :foo */ :bar */ :x", "SELECT /* a /* nested :foo */ :bar */ %(x)s"),
        ("SELECT ':foo', 'it''s :bar', :x", "SELECT ':foo', 'it''s :bar', %(x)s"),
        (r"SELECT E'\' :no', :x", r"SELECT E'\' :no', %(x)s"),
        ("SELECT $$ :foo $$, $f$ :bar $f$, :x", "SELECT $$ :foo $$, $f$ :bar $f$, %(x)s"),
        ('SELECT ":foo" FROM t WHERE x = :x', 'SELECT ":foo" FROM t WHERE x = %(x)s'),
        ("SELECT a[lo:hi], a[1:2], :x", "SELECT a[lo:hi], a[1:2], %(x)s"),
        ("SELECT 5 % 2, '100%' -- 50% off", "SELECT 5 %% 2, '100%%' -- 50%% off"),
        ("SELECT 'unterminated :x", "SELECT 'unterminated %(x)s"),
    ],
)
def test_placeholders_convert_outside_comments_and_literals(query, expected):
    assert _sql.to_psycopg(query) == expected


def test_the_parts_of_a_query_join_back_into_it():
    query = "SELECT :a, 'b' /* c /* d */ */ -- e\nFROM $t$ f $t$ \"g\" E'h\\''"
    parts = _sql.split(query)
    assert "".join(text for _, text in parts) == query
    assert [text for code, text in parts if not code] == [
        "'b'",
        "/* c /* d */ */",
        "-- e",
        "$t$ f $t$",
        '"g"',
        "E'h\\''",
    ]


def test_sqlalchemy_binds_only_the_placeholders_outside_comments_and_literals():
    from sqlalchemy import text
    from sqlalchemy.dialects import postgresql

    query = "SELECT CAST(:a AS text), ':no' -- see :foo\n/* :bar */ FROM t WHERE x = :x"
    clause = text(_sql.to_sqlalchemy(query))
    assert set(clause._bindparams) == {"a", "x"}
    compiled = str(clause.compile(dialect=postgresql.dialect()))
    assert compiled == (
        "SELECT CAST(%(a)s AS text), ':no' -- see :foo\n/* :bar */ FROM t WHERE x = %(x)s"
    )


def _names(package: str) -> list[str]:
    return sorted(
        f.name.removesuffix(".sql")
        for f in (importlib.resources.files(package) / "sql").iterdir()
        if f.name.endswith(".sql")
    )


@pytest.mark.parametrize("package", ["pgjobs", "pgjobs.web"])
def test_every_query_file_loads_for_both_drivers(package):
    names = _names(package)
    assert names
    for name in names:
        text = _sql.text(name, package)
        assert text.strip()
        assert not re.search(r"^\\include", text, re.MULTILINE)
        sent = _sql.psycopg(name, package)
        assert sent.startswith(f"-- {package.replace('.', '/')}/sql/{name}.sql\n"), name
        assert sent == _sql.to_psycopg(sent.split("\n", 1)[0] + "\n" + _sql.compact(text) + "\n")


@pytest.mark.parametrize("package", ["pgjobs", "pgjobs.web"])
def test_every_statement_sent_is_short_enough_for_psycopg_to_cache_its_parsing(package):
    # psycopg parses the placeholders of longer statements again on every
    # execution (a batch of outcomes paid that for complete.sql).
    from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH

    rare = {"rescue"}  # the leader's, every few seconds: parsing it costs nothing that counts
    for name in _names(package):
        sent = _sql.psycopg(name, package).encode()
        assert name in rare or len(sent) <= MAX_CACHED_STATEMENT_LENGTH, (name, len(sent))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT  a,\n    b -- why\nFROM   t", "SELECT a,\nb\nFROM t"),
        ("-- heading\n\n-- more\nSELECT 1\n\n\n", "SELECT 1"),
        ("SELECT a/* c */b, 'x  -- y\n\n  z', $f$ p\n\n  q $f$", None),
        ("SELECT \"two  spaces\", E'a\\'  b'", None),
    ],
)
def test_compacting_drops_comments_and_indentation_but_never_touches_a_literal(query, expected):
    compacted = _sql.compact(query)
    if expected is not None:
        assert compacted == expected
    literals = [
        text for code, text in _sql.split(query) if not code and text[:2] not in ("--", "/*")
    ]
    for literal in literals:
        assert literal in compacted
    assert "--" not in compacted.replace("'x  -- y", "")


def test_the_core_and_the_dashboard_each_load_their_own_files():
    assert "claim" in _names("pgjobs")
    assert "queue_active" in _names("pgjobs.web")
    assert "pgjobs.queues" in _sql.text("queue_settings", "pgjobs.web")
    with pytest.raises(FileNotFoundError):
        _sql.text("queue_settings")


def test_an_include_is_replaced_by_the_core_query_it_names():
    summary = _sql.text("job_summaries").rstrip("\n")
    for name, package in [
        ("admin_list_jobs", "pgjobs"),
        ("jobs_by_fingerprint", "pgjobs.web"),
        ("jobs_list_scheduled", "pgjobs.web"),
        ("jobs_list_retrying", "pgjobs.web"),
    ]:
        raw = (importlib.resources.files(package) / "sql" / f"{name}.sql").read_text()
        assert "\n\\include job_summaries\n" in raw + "\n", name
        assert _sql.text(name, package).rstrip("\n").endswith(summary), name


def test_the_walk_of_the_queues_is_written_once_and_starts_both_queries_that_need_it():
    walk = _sql.text("queues_with_queued_jobs").rstrip("\n")
    assert "WITH RECURSIVE queues AS" in walk
    for name in ("queued_queues", "unserved_queues"):
        raw = (importlib.resources.files("pgjobs") / "sql" / f"{name}.sql").read_text()
        assert "\n\\include queues_with_queued_jobs\n" in raw, name
        assert "WITH RECURSIVE" not in raw, name
        assert walk in _sql.text(name), name


# -- no SQL in the library's Python ----------------------------------------

# A string that starts like a statement. Upper case is how this code base
# writes SQL; lower case counts only with the shape of a statement.
_SQL_START = re.compile(
    r"""\s*(?:
        (?:SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|ALTER|DROP|LISTEN|UNLISTEN|NOTIFY|SET|SHOW
          |COPY|TRUNCATE|VACUUM|ANALYZE|EXPLAIN|PREPARE|EXECUTE|GRANT|REVOKE|BEGIN|COMMIT
          |ROLLBACK|SAVEPOINT|DO|CALL|LOCK|RESET|DISCARD)(?:\s+\S|\s*\()
      | (?i:select\s.+\sfrom\s|insert\s+into\s|update\s+\S+\s+set\s|delete\s+from\s
          |with\s+\w+\s+as\s+(?:materialized\s+)?\(|create\s+(?:table|index|view|function|schema)\s
          |(?:listen|notify|truncate)\s+\w+\s*$)
    )""",
    re.VERBOSE | re.DOTALL,
)

#: Development tools, not the library: the benchmarks, the demo and their
#: helpers run their own SQL on databases of their own.
_TOOLS = re.compile(r"(^|/)(_bench\w*|_demo\w*)\.py$|^(bench|demo)/")


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _composed(tree: ast.AST) -> set[int]:
    """What is given to psycopg's sql.SQL(...): composing with sql.Identifier is allowed."""
    found = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "SQL"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "sql"
        ):
            found.update(id(arg) for arg in ast.walk(node))
    return found


def sql_strings(source: str, filename: str) -> list[str]:
    """`file:line` of each string constant in `source` that reads as a SQL statement."""
    tree = ast.parse(source, filename)
    skip = _docstrings(tree) | _composed(tree)
    hits = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
            skip.update(id(v) for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        else:
            continue
        if _SQL_START.match(text):
            hits.append(f"{filename}:{node.lineno}")
    return hits


def test_the_library_has_no_sql_strings():
    hits = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if not _TOOLS.search(relative):
            hits += sql_strings(path.read_text(encoding="utf-8"), f"pgjobs/{relative}")
    assert not hits, "move this SQL to a .sql file (see pgjobs/_sql.py): " + ", ".join(hits)


@pytest.mark.parametrize(
    "planted",
    [
        'conn.execute("SELECT version_num FROM pgjobs.alembic_version")',
        "X = '''\n    UPDATE pgjobs.jobs SET status = 'queued'\n'''",
        'conn.execute(f"LISTEN {CHANNEL}")',
        'conn.execute("select id from pgjobs.jobs where id = %s", (1,))',
        '_COPY = "COPY pgjobs.jobs (id, task) FROM STDIN"',
        'conn.execute("VACUUM ANALYZE pgjobs.jobs")',
        'conn.execute("SET statement_timeout = 0")',
        'conn.execute("SELECT 1")',
        'conn.execute(sql.SQL("LISTEN pgjobs") + "SELECT 1")',
    ],
)
def test_the_sql_check_finds_a_planted_statement(planted):
    assert sql_strings(f"def f(conn):\n    {planted}\n", "planted.py") == ["planted.py:2"]


@pytest.mark.parametrize(
    "innocent",
    [
        '"""SELECT jobs, says a docstring: documentation, not a query."""',
        'raise ValueError("set the DSN with --dsn or PGJOBS_DSN")',
        'raise ValueError("Set the DSN with --dsn or PGJOBS_DSN")',
        'log.info("worker.started", note="with listen on")',
        'p.add_argument("--json", help="show the schedules")',
        'query = sql.SQL("LISTEN {}").format(sql.Identifier(channel))',
        'x = "Update the pgjobs package"',
        'x = "Delete a job that is not running"',
        'Route("/jobs/{id}", delete_job, methods=["DELETE"])',
    ],
)
def test_the_sql_check_leaves_prose_and_composition_alone(innocent):
    assert sql_strings(f"def f(conn):\n    {innocent}\n", "innocent.py") == []


def test_schema_revision_is_the_migrations_head():
    assert _migrate.head() == _migrate.SCHEMA_REVISION


def test_schema_mismatches_say_what_to_do():
    with pytest.raises(SchemaVersionError, match="python -m pgjobs migrate"):
        _migrate.check_schema(None)
    with pytest.raises(SchemaVersionError, match="python -m pgjobs migrate"):
        _migrate.check_schema(Schema("0001"))
    with pytest.raises(SchemaVersionError, match="Upgrade the pgjobs package"):
        _migrate.check_schema(Schema("9999", "9999"))
    _migrate.check_schema(Schema(_migrate.SCHEMA_REVISION, "0014"))
    # A newer revision that declares it still works with this code.
    _migrate.check_schema(Schema("9999", _migrate.SCHEMA_REVISION))


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
