"""The overview's chart of finished jobs: its time ranges, and the geometry of its SVG (pure)."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Range:
    """A time range of the chart: `buckets` bars of `step` seconds, the last one now."""

    name: str
    label: str
    buckets: int
    step: int

    @property
    def step_label(self) -> str:
        """The width of one bar, for people ("1 min", "15 min", "1 h")."""
        return f"{self.step // 3600} h" if self.step >= 3600 else f"{self.step // 60} min"


RANGES = {
    r.name: r
    for r in (
        Range("1h", "last hour", 60, 60),
        Range("24h", "last 24 hours", 24, 3600),
        Range("7d", "last 7 days", 168, 3600),
    )
}
DEFAULT_RANGE = "1h"


@dataclass(frozen=True, slots=True)
class Bucket:
    """Jobs finished in one bar's time: from `at`, `step` seconds long."""

    at: dt.datetime
    succeeded: int
    failed: int
    cancelled: int = 0


# The SVG's coordinate system: the plot of succeeded jobs on top, the plot of
# failed jobs under it with a scale of its own (so one failure among a
# million successes is still a bar you can see), and room for the labels.
WIDTH = 720
LEFT = 56
RIGHT = 8
OK_TOP = 8
OK_HEIGHT = 110
BAD_TOP = OK_TOP + OK_HEIGHT + 26
BAD_HEIGHT = 44
HEIGHT = BAD_TOP + BAD_HEIGHT + 22


def nice_top(value: int) -> int:
    """The smallest round number (1, 2 or 5 times a power of ten) at or above `value`."""
    if value <= 1:
        return 1
    power: int = 10 ** math.floor(math.log10(value))
    for factor in (1, 2, 5):
        if factor * power >= value:
            return factor * power
    return 10 * power


def _time_label(at: dt.datetime, rng: Range) -> str:
    at = at.astimezone(dt.UTC)
    return f"{at:%a %H:%M}" if rng.step >= 3600 else f"{at:%H:%M}"


def geometry(buckets: list[Bucket], rng: Range) -> dict[str, Any]:
    """Everything the template needs to draw the chart and its table of values.

    Succeeded and failed jobs are drawn as two series, each scaled to its own
    peak (rounded up to a round number, shown on its axis); the x axis has
    six time labels in UTC.
    """
    plot = WIDTH - LEFT - RIGHT
    slot = plot / max(len(buckets), 1)
    ok_top = nice_top(max([b.succeeded for b in buckets] + [0]))
    bad_top = nice_top(max([b.failed for b in buckets] + [0]))
    bars = []
    for i, b in enumerate(buckets):
        ok_h = b.succeeded / ok_top * OK_HEIGHT
        bad_h = b.failed / bad_top * BAD_HEIGHT
        bars.append(
            {
                "x": round(LEFT + i * slot + slot * 0.1, 2),
                "w": round(max(slot * 0.8, 0.5), 2),
                "ok_y": round(OK_TOP + OK_HEIGHT - ok_h, 2),
                "ok_h": round(ok_h, 2),
                "bad_y": round(BAD_TOP + BAD_HEIGHT - bad_h, 2),
                "bad_h": round(bad_h, 2),
                "label": f"{_time_label(b.at, rng)} UTC: {b.succeeded:,} succeeded, "
                f"{b.failed:,} failed, {b.cancelled:,} cancelled",
            }
        )
    ticks = []
    if buckets:
        every = max(len(buckets) // 6, 1)
        for i in range(0, len(buckets), every):
            ticks.append({"x": round(LEFT + i * slot, 2), "text": _time_label(buckets[i].at, rng)})
    return {
        "range": rng,
        "bars": bars,
        "ticks": ticks,
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "ok_top": ok_top,
        "ok_axis": (OK_TOP, OK_TOP + OK_HEIGHT),
        "bad_top": bad_top,
        "bad_axis": (BAD_TOP, BAD_TOP + BAD_HEIGHT),
        "succeeded": sum(b.succeeded for b in buckets),
        "failed": sum(b.failed for b in buckets),
        "cancelled": sum(b.cancelled for b in buckets),
        "rows": [
            {
                "at": b.at,
                "label": _time_label(b.at, rng),
                "succeeded": b.succeeded,
                "failed": b.failed,
                "cancelled": b.cancelled,
            }
            for b in buckets
        ],
    }
