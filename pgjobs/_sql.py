"""Named queries: the .sql files of a package's sql/ folder, loaded by name and cached.

The core's queries are in pgjobs/sql/, the dashboard's in pgjobs/web/sql/.
Each file is one statement, written with `:name` placeholders: a neutral
style that serves psycopg (`to_psycopg`) and SQLAlchemy's text()
(`to_sqlalchemy`) alike. A line that reads `\\include NAME` is replaced by
the core's query NAME (pgjobs/sql/NAME.sql), for a part that several
statements share (job_summaries.sql, the columns of a job list, which they
end with; queues_with_queued_jobs.sql, the walk of the queues that have
jobs, which they start with).
The text the server receives (`psycopg`, `sqlalchemy`) is the file's
compacted (`compact`): its comments and indentation dropped, and one comment
line naming the file put first, so a statement in pg_stat_statements or a
server log says where it comes from. psycopg parses a statement's
placeholders once and caches that only for statements of at most 4,096
characters: complete.sql, written with its reasons, is 7,600, and parsing
it again for every batch of outcomes cost the worker about 2 µs a job.
"""

from __future__ import annotations

import functools
import importlib.resources
import re

__all__ = ["compact", "psycopg", "split", "sqlalchemy", "text", "to_psycopg", "to_sqlalchemy"]

CORE = "pgjobs"

_INCLUDE = re.compile(r"^\\include (\w+)[ \t]*$", re.MULTILINE)

# The parts of a statement in which `:name` is not a placeholder: comments
# (`--` to the end of the line; `/* */`, which nest in PostgreSQL), string
# literals ('...', with '' for a quote; E'...' also takes backslash escapes),
# dollar-quoted strings and quoted identifiers. Everything between them is
# searched for placeholders.
_OPAQUE = re.compile(
    r"""
      --[^\n]*
    | /\*
    | (?<![\w$])[eE]'(?:[^'\\]|\\.|'')*'
    | '(?:[^']|'')*'
    | "(?:[^"]|"")*"
    | (?<![\w$])\$(?P<tag>[A-Za-z_]\w*)?\$
    """,
    re.VERBOSE | re.DOTALL,
)
_COMMENT_PART = re.compile(r"/\*|\*/")

# `:name`, but not a `::type` cast and not a slice bound such as `a[lo:hi]`.
_PLACEHOLDER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")

# What SQLAlchemy's text() takes for a placeholder, and escapes with a backslash.
_SQLALCHEMY_BIND = re.compile(r"(?<![:\w\\]):(\w+)(?![:\w])")


def _block_comment_end(query: str, start: int) -> int:
    """Where the block comment opening at `start` ends (after its `*/`), nesting counted."""
    depth = 0
    for match in _COMMENT_PART.finditer(query, start):
        depth += 1 if match.group() == "/*" else -1
        if depth == 0:
            return match.end()
    return len(query)  # unterminated: the server will say so


def split(query: str) -> list[tuple[bool, str]]:
    """`query` cut into its parts, each marked True where placeholders may be.

    False marks a comment, a string literal, a dollar-quoted string or a
    quoted identifier, whose text is never a placeholder; joined again, the
    parts are `query`.
    """
    parts: list[tuple[bool, str]] = []
    position = 0
    while (match := _OPAQUE.search(query, position)) is not None:
        end = match.end()
        if match.group() == "/*":
            end = _block_comment_end(query, match.start())
        elif match.group().startswith("$"):
            closing = query.find(match.group(), end)
            end = len(query) if closing < 0 else closing + len(match.group())
        parts += [(True, query[position : match.start()]), (False, query[match.start() : end])]
        position = end
    parts.append((True, query[position:]))
    return [(code, text) for code, text in parts if text]


def to_psycopg(query: str) -> str:
    """`query` with psycopg's `%(name)s` placeholders for its `:name` ones.

    Placeholders are found only in the SQL itself, never in a comment, a
    string literal or a quoted identifier (see `split`); `::type` casts stay
    as they are. Every `%` is doubled, comments and literals included,
    because psycopg reads `%` everywhere in a query and sends `%%` as `%`:
    the server gets back exactly the text as written.

    Args:
        query: SQL with `:name` placeholders.

    Returns:
        The same SQL for psycopg.
    """
    return "".join(
        _PLACEHOLDER.sub(r"%(\1)s", text.replace("%", "%%")) if code else text.replace("%", "%%")
        for code, text in split(query)
    )


def to_sqlalchemy(query: str) -> str:
    """`query` for SQLAlchemy's text(), which would take a `:name` anywhere for a placeholder.

    In comments, literals and quoted identifiers each such `:name` is
    escaped as `\\:name`, which text() sends as `:name`.

    Args:
        query: SQL with `:name` placeholders.

    Returns:
        The same SQL for SQLAlchemy.
    """
    return "".join(
        text if code else _SQLALCHEMY_BIND.sub(r"\\:\1", text) for code, text in split(query)
    )


_BLANKS = re.compile(r"[ \t]*\n\s*")
_SPACES = re.compile(r"[ \t]+")


def compact(query: str) -> str:
    """`query` without its comments, blank lines and indentation; literals are kept as written.

    Runs of spaces in the SQL itself become one space and every line starts
    at its first word; string literals, dollar-quoted strings and quoted
    identifiers keep every character.
    """
    merged: list[tuple[bool, str]] = []
    for code, part in split(query):
        if not code and part.startswith(("--", "/*")):
            code, part = True, "\n"  # a comment ends a line, at least
        if code and merged and merged[-1][0]:
            merged[-1] = (True, merged[-1][1] + part)
        else:
            merged.append((code, part))
    return "".join(
        _BLANKS.sub("\n", _SPACES.sub(" ", part)) if code else part for code, part in merged
    ).strip()


def _sent(name: str, package: str, query: str) -> str:
    return f"-- {package.replace('.', '/')}/sql/{name}.sql\n{compact(query)}\n"


def _read(name: str, package: str) -> str:
    resource = importlib.resources.files(package) / "sql" / f"{name}.sql"
    return resource.read_text(encoding="utf-8")


@functools.cache
def text(name: str, package: str = CORE) -> str:
    """The query `name` as written, with `:name` placeholders.

    Args:
        name: the file's name without `.sql`.
        package: whose sql/ folder: "pgjobs" or "pgjobs.web".

    Returns:
        The statement, with its `\\include` lines replaced.
    """
    return _INCLUDE.sub(lambda m: _read(m.group(1), CORE).rstrip("\n"), _read(name, package))


@functools.cache
def psycopg(name: str, package: str = CORE) -> str:
    """The query `name` with psycopg's `%(name)s` placeholders (see `text`).

    Run it with parameters, `{}` if it takes none: without them psycopg
    sends the query as it is, `%%` and all.
    """
    return to_psycopg(_sent(name, package, text(name, package)))


@functools.cache
def sqlalchemy(name: str, package: str = CORE) -> str:
    """The query `name` for SQLAlchemy's text() (see `text`)."""
    return to_sqlalchemy(_sent(name, package, text(name, package)))
