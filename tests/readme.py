"""The README's runnable snippets, as the tests that run them read them.

A snippet is the one fenced block between `<!-- snippet: NAME ... -->` and
the next `<!-- /snippet -->` in README.md; what follows NAME in the opening
marker is prose for readers (which test runs it).
"""

from __future__ import annotations

import re

from tests.conftest import REPO

README = REPO / "README.md"
_END = "<!-- /snippet -->"


def snippet(name: str, language: str) -> str:
    """The code of the ```LANGUAGE block of the README's snippet NAME."""
    text = README.read_text(encoding="utf-8")
    opening = re.search(rf"<!-- snippet: {re.escape(name)}(?=\s)", text)
    assert opening is not None, f"README.md has no snippet named {name!r}"
    start = opening.end()
    block = re.search(
        rf"```{re.escape(language)}\n(.*?)```", text[start : text.index(_END, start)], re.DOTALL
    )
    assert block is not None, f"no ```{language} block in the README's snippet {name!r}"
    return block.group(1)


def sql_statements(sql: str) -> list[str]:
    """The statements of a SQL snippet, its `--` comments left out (none holds a `;`)."""
    return [s for s in re.sub(r"--[^\n]*", "", sql).split(";") if s.strip()]
