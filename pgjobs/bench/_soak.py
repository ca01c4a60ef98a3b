"""The `soak` workload's parts: a paced producer, the table statistics, the per-interval series."""

from __future__ import annotations

import bisect
import itertools
import re
import statistics
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

#: The report interval: the "minute" of the per-minute series.
DEFAULT_INTERVAL = 60.0
#: The producer's pace: a batch every tick, of the jobs due since the last one.
PRODUCER_TICK = 0.1
#: How long the workers may take, after the producer stops, to run what is left.
DRAIN_TIMEOUT = 60.0
#: The windows the end ratio compares, in intervals, and the run it needs for them.
RATIO_WINDOW = 5
RATIO_MIN_INTERVALS = 10

_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)\s*")
_UNIT = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
DURATION_FORMS = "30m, 90s, 1h or a number of seconds (120, 0.5)"


def parse_duration(text: str) -> float:
    """Seconds in `text`: `30m`, `90s`, `1h`, or a plain number of seconds.

    Raises:
        ValueError: `text` is none of these, or not above zero.
    """
    match = _DURATION.fullmatch(text)
    seconds = float(match.group(1)) * _UNIT[match.group(2)] if match else 0.0
    if not seconds > 0:
        raise ValueError(f"expected a duration above zero such as {DURATION_FORMS}, got {text!r}")
    return seconds


# -- the producer --------------------------------------------------------------------

#: enqueue(conn, start, count): jobs start..start+count-1 in `conn`'s transaction.
Enqueue = Callable[[psycopg.Connection[Any], int, int], None]


class Producer(threading.Thread):
    """Enqueues `rate` jobs a second, a batch every PRODUCER_TICK, one transaction each.

    A thread of the parent process: the workers are processes of their own,
    so it takes nothing from their event loops. Each batch is what fell due
    since the last one, so a slow commit is caught up in the next batch
    rather than lost from the offered rate. It records where each batch
    starts and when it committed: a job's enqueue commit is its batch's.
    """

    def __init__(self, dsn: str, enqueue: Enqueue, rate: int) -> None:
        super().__init__(name="pgjobs-bench-soak-producer", daemon=True)
        self.dsn = dsn
        self.enqueue = enqueue
        self.rate = rate
        self.enqueued = 0
        self.batch_starts: list[int] = []
        self.batch_commits: list[float] = []
        self.error: BaseException | None = None
        self._stop_event = threading.Event()
        self.started_at = 0.0

    def run(self) -> None:
        try:
            with psycopg.connect(self.dsn) as conn:
                began = time.monotonic()
                self.started_at = time.time()
                tick = 0
                while not self._stop_event.is_set():
                    due = int(self.rate * (time.monotonic() - began)) - self.enqueued
                    if due > 0:
                        self.enqueue(conn, self.enqueued, due)
                        conn.commit()
                        self.batch_commits.append(time.time())
                        self.batch_starts.append(self.enqueued)
                        self.enqueued += due
                    tick += 1
                    self._stop_event.wait(max(0.0, began + tick * PRODUCER_TICK - time.monotonic()))
        except BaseException as exc:  # reported by the parent, which fails the workload
            self.error = exc

    def finish(self) -> None:
        """Stop producing, and raise what stopped the producer if it failed."""
        self._stop_event.set()
        self.join(30)
        if self.error is not None:
            raise RuntimeError(f"the soak producer failed: {self.error!r}") from self.error


# -- the held snapshot ----------------------------------------------------------------


def parse_window(text: str) -> tuple[float, float]:
    """`FROM:TO`, two durations from the soak's start (`3m:13m`, `0:10m`), as seconds.

    Raises:
        ValueError: either part is not a duration, or TO is not after FROM.
    """
    begin, sep, end = text.partition(":")
    try:
        if not sep:
            raise ValueError(text)
        start = 0.0 if begin.strip() in ("", "0") else parse_duration(begin)
        stop = parse_duration(end)
    except ValueError:
        raise ValueError(
            f"expected FROM:TO, two durations from the soak's start such as 3m:13m, got {text!r}"
        ) from None
    if stop <= start:
        raise ValueError(f"the hold must end after it starts, got {text!r}")
    return start, stop


class Holder(threading.Thread):
    """Holds a snapshot open from `begin` to `end` seconds after `t0`: the xmin horizon stays put.

    An idle-in-transaction session with a REPEATABLE READ snapshot, as an
    application's forgotten transaction or a long report would be: no row
    version that died after it started can be vacuumed while it lasts.
    """

    def __init__(self, dsn: str, t0: float, begin: float, end: float) -> None:
        super().__init__(name="pgjobs-bench-soak-holder", daemon=True)
        self.dsn, self.t0, self.begin, self.end = dsn, t0, begin, end
        self.held: tuple[float, float] | None = None
        self.error: BaseException | None = None
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            if self._stop_event.wait(max(0.0, self.t0 + self.begin - time.monotonic())):
                return
            with psycopg.connect(self.dsn) as conn:
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
                conn.execute("SELECT txid_current(), count(*) FROM pg_class").fetchone()
                held_from = time.monotonic() - self.t0
                self._stop_event.wait(max(0.0, self.t0 + self.end - time.monotonic()))
                conn.rollback()
                self.held = (held_from, time.monotonic() - self.t0)
        except BaseException as exc:  # reported by the parent, which fails the workload
            self.error = exc

    def finish(self) -> None:
        """Release the snapshot now if it is still held, and raise what stopped the holder."""
        self._stop_event.set()
        self.join(30)
        if self.error is not None:
            raise RuntimeError(f"the soak's snapshot holder failed: {self.error!r}") from self.error


def hold_summary(
    samples: Sequence[tuple[float, int, int]], held: tuple[float, float], interval: float
) -> dict[str, Any]:
    """Throughput while the snapshot was held against before it, and how soon the backlog recovered.

    Args:
        samples: (seconds since start, jobs enqueued so far, jobs run so far), ascending.
        held: when the snapshot was taken and released, in seconds since start.
        interval: the report interval; the baseline is the run before the hold,
            less its first interval (the workers warming up).
    """
    begin, end = held
    times = [s[0] for s in samples]

    enqueued = [(s[0], s[1]) for s in samples]
    handled = [(s[0], s[2]) for s in samples]

    def rate(t0: float, t1: float) -> float | None:
        return (_at(handled, t1) - _at(handled, t0)) / (t1 - t0) if t1 > t0 else None

    base_from = min(interval, begin / 2)
    before = [s[1] - s[2] for s in samples if base_from <= s[0] <= begin]
    baseline_backlog = max(before, default=0)
    recovered = next(
        (
            round(s[0] - end, 1)
            for s in samples
            if s[0] >= end and s[1] - s[2] <= max(baseline_backlog, 1)
        ),
        None,
    )
    base, during = rate(base_from, begin), rate(begin, end)
    during_offered = (_at(enqueued, end) - _at(enqueued, begin)) / (end - begin)
    worst = None
    for t0 in times:
        if begin <= t0 and t0 + interval <= end:
            r = rate(t0, t0 + interval)
            worst = r if worst is None or (r is not None and r < worst) else worst
    return {
        "held_s": [round(begin, 1), round(end, 1)],
        "baseline_rate": None if base is None else round(base, 1),
        "held_rate": None if during is None else round(during, 1),
        "held_offered_rate": round(during_offered, 1),
        "ratio": round(during / base, 3) if base and during is not None else None,
        "worst_interval_ratio": round(worst / base, 3) if base and worst is not None else None,
        "baseline_backlog": baseline_backlog,
        "recovered_after_s": recovered,
    }


# -- the tables ------------------------------------------------------------------------

# Each table of the schema, with its partitions (if it has any) summed into it.
_TABLE_STATS = """
SELECT root.relname AS name,
       count(*) AS parts,
       coalesce(sum(s.n_live_tup), 0) AS live,
       coalesce(sum(s.n_dead_tup), 0) AS dead,
       sum(pg_relation_size(c.oid)) AS table_bytes,
       sum(pg_indexes_size(c.oid)) AS index_bytes,
       sum(pg_total_relation_size(c.oid)) AS total_bytes
FROM pg_class AS c
JOIN pg_class AS root ON root.oid = coalesce(pg_partition_root(c.oid), c.oid)
JOIN pg_namespace AS n ON n.oid = root.relnamespace
LEFT JOIN pg_stat_user_tables AS s ON s.relid = c.oid
WHERE n.nspname = %(schema)s AND c.relkind = 'r'
GROUP BY root.relname
ORDER BY root.relname
"""


def table_stats(conn: psycopg.Connection[Any], schema: str) -> dict[str, dict[str, int]]:
    """Rows live and dead, and bytes of table, indexes and all, of each table in `schema`."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_TABLE_STATS, {"schema": schema}).fetchall()
    return {row.pop("name"): {k: int(v) for k, v in row.items()} for row in rows}


# -- the series --------------------------------------------------------------------------


@dataclass
class Snapshot:
    """The counters at the end of one interval."""

    t: float  # seconds since the producer started
    enqueued: int
    handled: int
    depth: int
    tables: dict[str, dict[str, int]] = field(default_factory=dict)


def latency_buckets(
    runs: Iterable[tuple[Sequence[int], Sequence[float]]],
    batch_starts: Sequence[int],
    batch_commits: Sequence[float],
    started_at: float,
    interval: float,
    count: int,
) -> list[array[float]]:
    """Enqueue commit to handler start, in ms, of each job, by the interval its handler started in.

    Args:
        runs: each worker process's job ids and handler start times (epoch seconds).
        batch_starts: the first job id of each batch, ascending.
        batch_commits: each batch's commit time.
        started_at: when the producer started (epoch seconds).
        interval: the length of an interval, in seconds.
        count: the intervals; handlers that started after the last one are left out.
    """
    buckets: list[array[float]] = [array("d") for _ in range(count)]
    for ids, starts in runs:
        for i, start in zip(ids, starts, strict=True):
            k = int((start - started_at) // interval)
            batch = bisect.bisect_right(batch_starts, i) - 1
            if 0 <= k < count and batch >= 0:
                buckets[k].append((start - batch_commits[batch]) * 1000)
    return buckets


def _quantiles(values: array[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    if len(values) == 1:
        return values[0], values[0]
    q = statistics.quantiles(values, n=100, method="inclusive")
    return round(q[49], 2), round(q[98], 2)


def series(
    snapshots: Sequence[Snapshot], buckets: Sequence[array[float]], interval: float
) -> list[dict[str, Any]]:
    """One row per interval: what was enqueued and run in it, its latency, the state at its end.

    Args:
        snapshots: the counters at the start (t=0) and at the end of each interval.
        buckets: the latencies of each interval (see `latency_buckets`).
        interval: the nominal length of an interval, in seconds.
    """
    rows = []
    for k, (before, after) in enumerate(itertools.pairwise(snapshots)):
        seconds = after.t - before.t or interval
        p50, p99 = _quantiles(buckets[k]) if k < len(buckets) else (None, None)
        done = after.handled - before.handled
        rows.append(
            {
                "interval": k + 1,
                "end_s": round(after.t, 1),
                "enqueued": after.enqueued - before.enqueued,
                "enqueue_rate": round((after.enqueued - before.enqueued) / seconds, 1),
                "completed": done,
                "throughput": round(done / seconds, 1),
                "queue_depth": after.depth,
                "latency_p50_ms": p50,
                "latency_p99_ms": p99,
                "tables": after.tables,
            }
        )
    return rows


def end_ratio(samples: Sequence[tuple[float, int]], interval: float) -> dict[str, Any]:
    """Throughput in the run's last window over its first.

    The windows are RATIO_WINDOW intervals ("the last five minutes over the
    first five") when the run lasts RATIO_MIN_INTERVALS intervals or more,
    and else the last fifth of the run over the first fifth.

    Args:
        samples: (seconds since start, jobs run so far), ascending, from (0, 0)
            to the end of the run.
        interval: the length of an interval, in seconds.
    """
    end = samples[-1][0]
    if end >= RATIO_MIN_INTERVALS * interval:
        window, basis = RATIO_WINDOW * interval, f"last {RATIO_WINDOW} intervals over first"
    else:
        window, basis = end / 5, "last fifth over first fifth (run shorter than 10 intervals)"
    first = _at(samples, window) - _at(samples, 0.0)
    last = _at(samples, end) - _at(samples, end - window)
    return {
        "ratio": round(last / first, 3) if first > 0 else None,
        "window_s": round(window, 1),
        "first_rate": round(first / window, 1) if window > 0 else None,
        "last_rate": round(last / window, 1) if window > 0 else None,
        "basis": basis,
    }


def _at(samples: Sequence[tuple[float, int]], t: float) -> float:
    """The count at time `t`, interpolated between the samples around it."""
    times = [s[0] for s in samples]
    k = bisect.bisect_left(times, t)
    if k == 0:
        return float(samples[0][1])
    if k >= len(samples):
        return float(samples[-1][1])
    (t0, n0), (t1, n1) = samples[k - 1], samples[k]
    return n0 + (n1 - n0) * (t - t0) / (t1 - t0) if t1 > t0 else float(n1)


def accounting(runs: Iterable[Sequence[int]], enqueued: int, left: int) -> dict[str, int]:
    """Jobs that ran twice, ran unasked, or are lost: neither run nor still in the queue.

    Args:
        runs: the job ids each worker process ran.
        enqueued: jobs 0..enqueued-1 were enqueued.
        left: jobs still queued or running when the workers stopped.
    """
    seen = bytearray(enqueued)
    twice = unexpected = 0
    for ids in runs:
        for i in ids:
            if not 0 <= i < enqueued:
                unexpected += 1
            elif seen[i]:
                twice += 1
            else:
                seen[i] = 1
    ran = enqueued - seen.count(0)
    return {
        "ran": ran,
        "ran_twice": twice,
        "unexpected": unexpected,
        "left_queued": left,
        "lost": enqueued - ran - left,
    }


# -- the report --------------------------------------------------------------------------


def _count(n: float) -> str:
    """A row count in four characters or so: 950, 12.3k, 4.1M."""
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    if n >= 1e4:
        return f"{n / 1e3:.0f}k"
    if n >= 1e3:
        return f"{n / 1e3:.1f}k"
    return f"{n:.0f}"


def _mb(n: float) -> str:
    return f"{n / 2**20:.1f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def render(params: dict[str, Any], extra: dict[str, Any]) -> str:
    """The soak's report: a row per interval, then the end ratio and the job accounting."""
    rows: list[dict[str, Any]] = extra["intervals"]
    # The tables the run changed get columns; the others (the schema's
    # bookkeeping, say) one line at the end.
    every = sorted({name for row in rows for name in row["tables"]})
    before = extra.get("tables_at_start", {})
    tables = [
        n for n in every if len({str(t.get(n)) for t in [before] + [r["tables"] for r in rows]}) > 1
    ]
    header = ["#", "end s", "enq/s", "done/s", "depth", "p50 ms", "p99 ms"]
    for name in tables:
        header += [f"{name} live/dead", f"{name} MB tbl+idx"]
    lines = [header]
    for row in rows:
        line = [
            str(row["interval"]),
            f"{row['end_s']:.0f}",
            f"{row['enqueue_rate']:,.0f}",
            f"{row['throughput']:,.0f}",
            f"{row['queue_depth']:,}",
            _ms(row["latency_p50_ms"]),
            _ms(row["latency_p99_ms"]),
        ]
        for name in tables:
            t = row["tables"].get(name)
            line += (
                [
                    f"{_count(t['live'])}/{_count(t['dead'])}",
                    f"{_mb(t['table_bytes'])}+{_mb(t['index_bytes'])}",
                ]
                if t
                else ["-", "-"]
            )
        lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = [
        f"soak {params.get('rate')} jobs/s offered for {params.get('seconds')} s "
        f"(P={params.get('P')} C={params.get('C')}, 1 ms jobs), one row per "
        f"{extra['interval_s']:g} s; latency is enqueue commit to handler start",
    ]
    for n, line in enumerate(lines):
        out.append("  " + "  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)))
        if n == 0:
            out.append("  " + "  ".join("-" * w for w in widths))
    r = extra["end_ratio"]
    ratio = "-" if r["ratio"] is None else f"{r['ratio']:.3f}"
    out.append(
        f"  throughput {ratio}x at the end: {r['basis']}, windows of {r['window_s']:g} s, "
        f"{r['first_rate']:,.0f} -> {r['last_rate']:,.0f} jobs/s"
    )
    if unchanged := [n for n in every if n not in tables]:
        out.append(f"  unchanged through the run: {', '.join(unchanged)}")
    if h := extra.get("hold"):
        ratio = "-" if h["ratio"] is None else f"{h['ratio']:.3f}"
        worst = "-" if h["worst_interval_ratio"] is None else f"{h['worst_interval_ratio']:.3f}"
        recovered = (
            "never, in the run"
            if h["recovered_after_s"] is None
            else f"{h['recovered_after_s']:g} s after the release"
        )
        out.append(
            f"  snapshot held from {h['held_s'][0]:g} s to {h['held_s'][1]:g} s: "
            f"{h['held_rate']:,.0f} jobs/s under it against {h['baseline_rate']:,.0f} before "
            f"({ratio}x; worst interval {worst}x); backlog back to its level before "
            f"({h['baseline_backlog']:,} jobs) {recovered}"
        )
    a = extra["jobs"]
    out.append(
        f"  jobs: {extra['enqueued']:,} enqueued, {a['ran']:,} ran ({extra['drained']:,} of them "
        f"after the producer stopped), {a['left_queued']:,} left queued, {a['lost']:,} lost, "
        f"{a['ran_twice']:,} ran twice"
    )
    return "\n".join(out)


def progress(row: dict[str, Any]) -> str:
    """One line for an interval as it ends (before its latency is known)."""
    jobs = row["tables"].get("jobs")
    line = (
        f"  soak #{row['interval']} at {row['end_s']:.0f} s: enqueued {row['enqueued']:,}, "
        f"ran {row['completed']:,} ({row['throughput']:,.0f}/s), depth {row['queue_depth']:,}"
    )
    if jobs:
        line += (
            f", jobs live/dead {_count(jobs['live'])}/{_count(jobs['dead'])}, "
            f"{_mb(jobs['total_bytes'])} MB with indexes"
        )
    return line
