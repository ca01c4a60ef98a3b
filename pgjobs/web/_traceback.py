"""A recorded traceback split into the application's frames and runs of library frames (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# `  File "/path/to/module.py", line 12, in handler`, as traceback.format_exception writes it.
_FRAME = re.compile(r'^  File "(?P<path>[^"]*)", line \d+')

#: Path fragments of code that is not the application's: installed packages,
#: the standard library, frozen modules, and pgjobs itself (the worker that
#: called the handler).
LIBRARY_MARKERS = (
    "/site-packages/",
    "/dist-packages/",
    "/lib/python3",
    "\\lib\\",
    "<frozen ",
    "/pgjobs/worker/",
    "/pgjobs/_",
)


@dataclass(frozen=True, slots=True)
class Block:
    """Consecutive lines of a traceback: library frames (collapsed when shown) or not."""

    text: str
    library: bool
    frames: int


def is_library(path: str) -> bool:
    """Whether a frame's file is library code rather than the application's."""
    return any(marker in path for marker in LIBRARY_MARKERS)


def blocks(traceback: str) -> list[Block]:
    """`traceback` cut into blocks; a frame's source lines go with its `File` line.

    Joining every block's text gives back the traceback unchanged.
    """
    out: list[tuple[list[str], bool, int]] = []
    library = False
    for line in traceback.splitlines(keepends=True):
        frame = _FRAME.match(line)
        if frame:
            library = is_library(frame.group("path"))
        elif not line.startswith("    "):
            library = False  # a line that belongs to no frame (the header, the error)
        if out and out[-1][1] == library:
            out[-1][0].append(line)
            if frame:
                out[-1] = (out[-1][0], library, out[-1][2] + 1)
        else:
            out.append(([line], library, 1 if frame else 0))
    return [Block("".join(lines), lib, frames) for lines, lib, frames in out]
