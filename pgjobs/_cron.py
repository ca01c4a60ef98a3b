"""Cron tick arithmetic (pure): parse an expression and a timezone, find the ticks in time.

A schedule's ticks are instants (aware UTC datetimes). They are found by
walking the wall clock of the schedule's timezone with croniter, which only
ever sees naive wall times, and mapping each wall time to an instant here, so
that daylight-saving changes behave as cron users expect:

- Spring forward (a wall time that does not exist, such as 02:30 when the
  clocks jump from 02:00 to 03:00): the tick fires once, at the instant the
  clocks jump. Several skipped wall times collapse into that one tick.
- Fall back (a wall time that happens twice, such as 02:30 when the clocks go
  back from 03:00 to 02:00): the tick fires once, at the first occurrence.
  Only a schedule whose hour field is `*` (it runs every hour) fires again in
  the repeated hour, so that it keeps its rhythm in real time.

Timezone transitions are found by probing the UTC offset once a day and
bisecting to the second. Two transitions less than a day apart (which no
current timezone has) would be seen as none.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from pgjobs.errors import ConfigurationError

UTC = dt.UTC
_SECOND = dt.timedelta(seconds=1)
_PROBE_STEP = dt.timedelta(days=1)

#: The nicknames cron understands, and what they stand for.
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_TIMEZONE_NAME = re.compile(r"^[A-Za-z0-9_+\-/]+$")


@dataclass(frozen=True, slots=True)
class Cron:
    """A checked cron expression in a timezone; build it with `parse`.

    Attributes:
        expression: the expression as declared.
        timezone: the IANA timezone name its wall clock is read in.
    """

    expression: str
    timezone: str
    _fields: str = field(repr=False, compare=False)
    _zone: ZoneInfo = field(repr=False, compare=False)
    _hourly: bool = field(repr=False, compare=False)

    @property
    def has_seconds(self) -> bool:
        """Whether the expression has the optional sixth (seconds) field."""
        return len(self._fields.split()) == 6

    def next_tick(self, after: dt.datetime) -> dt.datetime:
        """The first tick strictly after the instant `after` (aware), in UTC."""
        return next(self.iter_ticks(after))

    def ticks_between(
        self, start: dt.datetime, end: dt.datetime, limit: int | None = None
    ) -> list[dt.datetime]:
        """The ticks `t` with `start < t <= end`, oldest first, at most `limit` of them."""
        found: list[dt.datetime] = []
        for tick in self.iter_ticks(start):
            if tick > end or (limit is not None and len(found) >= limit):
                break
            found.append(tick)
        return found

    def iter_ticks(self, after: dt.datetime) -> Iterator[dt.datetime]:
        """Every tick strictly after the instant `after`, in order, forever (UTC)."""
        t = _floor_second(_aware(after, "after"))
        local = t.astimezone(self._zone)
        offset = _utcoffset(local)
        wall = local.replace(tzinfo=None, fold=0)
        if local.fold == 1 and not self._hourly:
            # `after` is in the repeated hour of a fall-back: the wall times
            # up to the end of that hour have fired at their first occurrence.
            before = _utcoffset(local.replace(fold=0))
            if before != offset:
                fell_back = self._first_transition(t - (before - offset) - _SECOND, t, before)
                if fell_back is not None:
                    wall = max(wall, _naive(fell_back + before) - _SECOND)
        walls = croniter(self._fields, wall)
        while True:
            next_wall: dt.datetime = walls.get_next(dt.datetime)
            candidate = (next_wall - offset).replace(tzinfo=UTC)
            change = self._first_transition(t, candidate, offset)
            if change is None:
                yield candidate
                t = candidate
                continue
            new_offset = _utcoffset(change.astimezone(self._zone))
            restart = _naive(change + new_offset) - _SECOND
            if new_offset > offset:
                # Spring forward: wall times in [change+offset, change+new_offset)
                # do not exist. If the schedule has any there, it fires once,
                # as the clocks jump.
                if next_wall < _naive(change + new_offset):
                    yield change
                    restart += _SECOND  # the wall time at `change` is that tick
            elif not self._hourly:
                # Fall back: the wall times of the repeated hour already fired.
                restart = _naive(change + offset) - _SECOND
            t, offset = change, new_offset
            walls = croniter(self._fields, restart)

    def _first_transition(
        self, start: dt.datetime, end: dt.datetime, offset: dt.timedelta
    ) -> dt.datetime | None:
        """The first whole-second instant in (start, end] whose UTC offset is not `offset`."""
        low = start
        while low < end:
            high = min(low + _PROBE_STEP, end)
            if _utcoffset(high.astimezone(self._zone)) != offset:
                # Bisect (low, high] down to the second; tzdata transitions
                # happen on whole seconds.
                lo, hi = _floor_second(low), _floor_second(high)
                if hi < high:
                    hi += _SECOND
                while hi - lo > _SECOND:
                    mid = lo + _floor_delta((hi - lo) / 2)
                    if _utcoffset(mid.astimezone(self._zone)) == offset:
                        lo = mid
                    else:
                        hi = mid
                return hi
            low = high
        return None


def parse(expression: str, tz: str = "UTC") -> Cron:
    """Check a cron expression and a timezone.

    The expression has five fields (minute hour day-of-month month day-of-week)
    and an optional sixth, seconds, at the end (croniter's convention), or is
    one of the nicknames in ALIASES.

    Args:
        expression: for example "*/5 * * * *", or "* * * * * */10" for every 10 s.
        tz: an IANA timezone name, such as "Europe/Paris". Default UTC.

    Raises:
        ConfigurationError: the expression or the timezone is invalid, or the
            expression never matches a date; the message names both and why.
    """
    if not isinstance(expression, str) or not expression.strip():
        raise ConfigurationError(f"cron expression {expression!r} is invalid: it is empty")
    fields = " ".join(ALIASES.get(expression.strip().lower(), expression).split())
    count = len(fields.split())
    if count not in (5, 6):
        raise ConfigurationError(
            f"cron expression {expression!r} is invalid: it has {count} fields; expected 5 "
            "(minute hour day-of-month month day-of-week), or 6 with seconds last, "
            "or a nickname such as @hourly"
        )
    zone = _zone(expression, tz)
    try:
        walls = croniter(fields, dt.datetime(2000, 1, 1))
        walls.get_next(dt.datetime)
    except (CroniterError, ValueError, KeyError) as exc:
        reason = str(exc).strip() or type(exc).__name__
        if "failed to find" in reason:
            reason = "it matches no date (for example the 31st of a short month)"
        raise ConfigurationError(f"cron expression {expression!r} is invalid: {reason}") from None
    hourly = fields.split()[1] == "*"
    return Cron(expression, tz, fields, zone, hourly)


def _zone(expression: str, tz: str) -> ZoneInfo:
    if not isinstance(tz, str) or not _TIMEZONE_NAME.match(tz):
        raise ConfigurationError(
            f"timezone {tz!r} of cron expression {expression!r} is invalid: "
            "expected an IANA name such as 'UTC' or 'Europe/Paris'"
        )
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"timezone {tz!r} of cron expression {expression!r} is invalid: no such IANA "
            "timezone (names look like 'Europe/Paris'; install tzdata if the system has none)"
        ) from None


def _aware(value: dt.datetime, name: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise ValueError(f"{name} must be an aware datetime, got {value!r}")
    return value.astimezone(UTC)


def _floor_second(value: dt.datetime) -> dt.datetime:
    return value.replace(microsecond=0)


def _floor_delta(delta: dt.timedelta) -> dt.timedelta:
    return dt.timedelta(seconds=int(delta.total_seconds()))


def _naive(instant_plus_offset: dt.datetime) -> dt.datetime:
    """A UTC instant already shifted by an offset, as a naive wall time."""
    return instant_plus_offset.replace(tzinfo=None)


def _utcoffset(local: dt.datetime) -> dt.timedelta:
    offset = local.utcoffset()
    if offset is None:
        raise ValueError(f"{local!r} has no UTC offset; pass an aware datetime")
    return offset
