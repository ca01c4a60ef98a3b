"""Plain-text tables and key/value blocks for the operator commands (pure)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

#: The widest a table cell gets before it is cut with an ellipsis.
MAX_CELL = 48


def cell(value: object, max_width: int = MAX_CELL) -> str:
    """One value as table text: None is blank, line breaks become spaces, long text is cut."""
    if value is None:
        return ""
    text = " ".join(str(value).split()) if isinstance(value, str) else str(value)
    if len(text) > max_width:
        return text[: max_width - 1] + "…"
    return text


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, max_width: int = MAX_CELL
) -> str:
    """Align rows under headers, two spaces apart, numbers to the right.

    A column is right-aligned when every non-empty value in it is a number.
    Trailing spaces are stripped, so the output diffs cleanly.

    Args:
        headers: the column titles.
        rows: one sequence per row, as long as `headers`.
        max_width: the widest a cell may be before it is cut.

    Returns:
        The table, one line per row after a header line and a rule, no final newline.

    Raises:
        ValueError: a row does not have one value per header.
    """
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"row {row!r} has {len(row)} values for {len(headers)} columns")
    texts = [[cell(v, max_width) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in texts)]) for i, h in enumerate(headers)]
    numeric = [
        any(_is_number(r[i]) for r in rows) and all(r[i] is None or _is_number(r[i]) for r in rows)
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    rule = ["-" * w for w in widths]
    return "\n".join([line(list(headers)), line(rule), *(line(r) for r in texts)])


def fields(pairs: Sequence[tuple[str, object]]) -> str:
    """Key/value lines with the values aligned; a multi-line value continues indented.

    Returns:
        The block, no final newline.
    """
    width = max((len(k) for k, _ in pairs), default=0)
    lines = []
    for key, value in pairs:
        text = "" if value is None else str(value)
        first, *rest = text.splitlines() or [""]
        lines.append(f"{key + ':':<{width + 1}}  {first}".rstrip())
        lines.extend(f"{'':<{width + 3}}{more}".rstrip() for more in rest)
    return "\n".join(lines)


def timestamp(value: dt.datetime | None) -> str:
    """An instant in UTC to the second, e.g. `2026-11-23 09:15:02Z`; blank for None."""
    if value is None:
        return ""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def duration(seconds: float | None) -> str:
    """A span in its two largest units, e.g. `45s`, `3m12s`, `2h05m`, `3d04h`; blank for None."""
    if seconds is None:
        return ""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
