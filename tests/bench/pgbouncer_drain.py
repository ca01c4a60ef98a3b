"""A drain through PgBouncer against a direct one, as a ratio.

    python -m tests.bench.pgbouncer_drain [SERVER_DSN] [--jobs N] [--rounds R]

Drains N no-op jobs (default 20,000) at concurrency 50 with one worker
process, R times each way (default 6), taking turns so that a slow minute of
a shared machine hits both alike:

- direct: the worker on the server's own address, as `pgjobs worker` runs
  by default (listening; statements prepared);
- through PgBouncer: the tests' stock transaction-mode PgBouncer
  (tests/pgbouncer.py; the `pgbouncer` binary must be installed) in front
  of the same server, with the worker as the README says to run it there,
  `--no-listen` (polling; no startup options, nothing prepared). Without
  `--leader-dsn` it runs the leader's duties itself (it logs
  `leader.lockless` each turn), as the one worker that leads would.

The clock runs, as in `pgjobs bench`'s drain, from the first handler's start
to the last outcome written. Prints each turn, the medians and the ratio of
each round (PgBouncer over direct). Uses a scratch database it creates and
drops (pgjobs_bench_pgbouncer_*).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics

from pgjobs.bench import _bench
from pgjobs.worker import WorkerConfig
from tests.pgbouncer import PgBouncer, available


class PollingSystem(_bench.PgjobsSystem):
    """pgjobs' worker with `--no-listen`: what runs behind a transaction pooler."""

    name = "pgjobs-polling"

    def worker_config(self, concurrency: int) -> WorkerConfig:
        return dataclasses.replace(super().worker_config(concurrency), listen=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "dsn",
        nargs="?",
        default=os.environ.get("PGJOBS_DSN", "postgresql://postgres@127.0.0.1/postgres"),
    )
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    if not available():
        parser.error("the pgbouncer binary is not installed (apt-get install pgbouncer)")
    rates: dict[str, list[float]] = {"direct": [], "pgbouncer": []}
    # The worker processes load the polling system by this name.
    _bench.SYSTEMS[PollingSystem.name] = f"{__name__}:PollingSystem"
    with _bench.scratch_database(args.dsn, "pgbouncer") as dsn:
        direct = _bench.load_system("pgjobs", dsn)
        direct.setup()
        bouncer = PgBouncer(dsn)
        try:
            bouncer.wait_ready(dsn)
            ways = [
                ("direct", direct, None),
                ("pgbouncer", PollingSystem(dsn), bouncer.dsn(dsn)),
            ]
            for number in range(args.rounds):
                for name, system, worker_dsn in ways if number % 2 == 0 else ways[::-1]:
                    result = _bench.run_drain(system, args.jobs, 50, 1, worker_dsn=worker_dsn)
                    rate = result.value
                    rates[name].append(rate)
                    print(f"round {number + 1}: {name:9s} {rate:9,.0f} jobs/s", flush=True)
        finally:
            bouncer.stop()
    ratios = [b / d for b, d in zip(rates["pgbouncer"], rates["direct"], strict=True)]
    print(
        f"medians: direct {statistics.median(rates['direct']):,.0f} jobs/s, "
        f"pgbouncer {statistics.median(rates['pgbouncer']):,.0f} jobs/s; "
        f"pgbouncer/direct per round {', '.join(f'{r:.2f}' for r in ratios)}, "
        f"median {statistics.median(ratios):.2f}x"
    )


if __name__ == "__main__":
    main()
