"""`python -m pgjobs bench`: its options; the benchmark itself is pgjobs.bench."""

from __future__ import annotations

import argparse

from pgjobs.bench import _bench as bench
from pgjobs.bench import _soak
from pgjobs.cli._terminal import add_dsn, csv_ints, csv_names, non_negative_int, positive_int


def duration(text: str) -> float:
    """An argparse type: seconds, as `30m`, `90s`, `1h` or a plain number."""
    try:
        return _soak.parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def window(text: str) -> tuple[float, float]:
    """An argparse type: `FROM:TO`, two durations from the soak's start."""
    try:
        return _soak.parse_window(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def workloads(text: str) -> list[str]:
    """An argparse type: comma-separated workloads; `all` is every one but the long ones."""
    names = [v.strip() for v in text.split(",") if v.strip()]
    if "all" not in names:
        return csv_names(bench.WORKLOADS + bench.LONG_WORKLOADS)(text)
    named = [n for n in names if n != "all"]
    chosen = csv_names(bench.WORKLOADS + bench.LONG_WORKLOADS)(",".join(named)) if named else []
    return list(dict.fromkeys([*bench.WORKLOADS, *chosen]))


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `bench` command."""
    p = sub.add_parser(
        "bench",
        help="measure throughput and latency against the raw-SQL ceiling",
        description="Benchmark pgjobs (and the raw-SQL reference, and the peers) on a scratch "
        "database it creates and drops. With no DSN, on an embedded PostgreSQL.",
    )
    add_dsn(p)
    p.add_argument(
        "--jobs",
        "-n",
        type=positive_int,
        default=10_000,
        help="jobs per enqueue and drain workload (default 10000)",
    )
    p.add_argument(
        "--concurrency",
        "-c",
        type=csv_ints,
        default=[50],
        help="drain concurrency, comma-separated for several runs (default 50)",
    )
    p.add_argument(
        "--processes",
        "-p",
        type=csv_ints,
        default=[1],
        help="drain worker processes, comma-separated (default 1)",
    )
    p.add_argument(
        "--job-cpu-us",
        type=non_negative_int,
        default=0,
        metavar="US",
        help="CPU time each drained job's handler spends, in microseconds (default 0: "
        "no-op jobs); what several worker processes (-p 1,2) are for",
    )
    p.add_argument(
        "--workload",
        "-w",
        type=workloads,
        action="extend",
        help=f"comma-separated, repeatable, or 'all' (default: "
        f"{','.join(bench.DEFAULT_WORKLOADS)}); choices: "
        f"{', '.join(bench.WORKLOADS + bench.LONG_WORKLOADS)}; 'all' leaves out "
        f"{', '.join(bench.LONG_WORKLOADS)}, which runs only when named",
    )
    p.add_argument(
        "--systems",
        type=csv_names(tuple(bench.SYSTEMS)),
        default=["pgjobs"],
        help="what to measure, comma-separated (default pgjobs); `nox -s bench` adds "
        "the peers (procrastinate, pgqueuer, chancy), whose adapters do not ship with pgjobs",
    )
    p.add_argument(
        "--compare-raw",
        action="store_true",
        help="also run the raw-SQL reference and print pgjobs/raw ratios",
    )
    p.add_argument(
        "--batch", type=int, default=10_000, help="jobs per enqueue-bulk call (default: 10000)"
    )
    p.add_argument(
        "--backlog-finished",
        type=int,
        default=1_000_000,
        help="finished rows retained in `backlog` (default 1000000)",
    )
    p.add_argument(
        "--backlog-queued",
        type=int,
        default=100_000,
        help="queued jobs drained in `backlog` (default 100000)",
    )
    p.add_argument(
        "--duration",
        type=duration,
        default=None,
        help=f"length of each long-transaction run (default "
        f"{bench.LONG_TRANSACTION_SECONDS:g} s) and soak run (default "
        f"{bench.SOAK_SECONDS / 60:g}m): {_soak.DURATION_FORMS}",
    )
    p.add_argument(
        "--rate",
        type=positive_int,
        default=1000,
        help="jobs/s the soak's producer enqueues (default 1000)",
    )
    p.add_argument(
        "--soak-interval",
        type=duration,
        default=_soak.DEFAULT_INTERVAL,
        help=f"the soak's report interval, its 'minute' (default "
        f"{_soak.DEFAULT_INTERVAL:g} s); shorter for a quick try",
    )
    p.add_argument(
        "--hold-xmin",
        type=window,
        default=None,
        metavar="FROM:TO",
        help="in the soak, hold a snapshot open (idle in transaction) from FROM to TO after "
        "its start, such as 3m:13m, and report throughput under it and the recovery after",
    )
    p.add_argument(
        "--repeat",
        "-r",
        type=int,
        default=1,
        help="runs of each workload per system; the median is reported (default 1)",
    )
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(handler=bench.run)
