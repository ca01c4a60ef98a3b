"""Drains of several checkouts taking turns, on kept databases: is a change a regression?

    python tests/bench/drain_pairs.py --rounds 30 --jobs 20000 \\
        before=/path/to/old/checkout after=/path/to/new/checkout

On a shared two-core machine one drain's rate moves by 20% or more from
minute to minute, so a 5% regression hides in any handful of runs. This
takes many short turns instead: each checkout gets a database of its own,
created and migrated by that checkout once and then reused (a turn is an
insert, a VACUUM and the drain: a few seconds), and the checkouts take turns
in rotating order, so that a slow minute hits them alike. After each turn it
prints the rate and the CPU the whole machine and the worker process spent
per job (the rest is mostly PostgreSQL's); at the end, each checkout's
medians, and per round the rate of each checkout against the first one's,
with how many rounds it was lower in.

Every checkout's own `pgjobs.bench` runs its turn (it is run with the
checkout as PYTHONPATH, as a file, so that the checkout is the pgjobs
imported), with the drain's usual settings: concurrency 50, one process,
no-op jobs, the clock from the first handler to the last outcome written.
`--prep NAME SQL` runs SQL in NAME's database once it is migrated, for an
experiment (dropping an index, a trigger); `--processes NAME N` drains
NAME's turns with N worker processes, so that one checkout under two names
compares two processes against one:

    python tests/bench/drain_pairs.py --rounds 10 --jobs 30000 --processes two 2 one=. two=.

The databases are dropped at the end unless `--keep`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def _busy_ticks() -> int:
    """The machine's CPU ticks spent on anything but idle and iowait, so far."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return sum(values) - values[3] - values[4]


def _turn(dsn: str, jobs: int, fresh: bool, processes: int) -> dict[str, float]:
    """One drain in this process's checkout (the child's side)."""
    from pgjobs.bench import _bench

    system = _bench.load_system("pgjobs", dsn)
    if fresh:
        system.setup()
    system.reset()
    system.insert(0, jobs)
    _bench._vacuum(dsn)
    ticks = _busy_ticks()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    rate, _ = _bench.drain(system, jobs, 50, processes)
    ticks = _busy_ticks() - ticks
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    hz = os.sysconf("SC_CLK_TCK")
    return {
        "rate": rate,
        "machine_us": ticks / hz * 1e6 / jobs,
        "worker_us": worker * 1e6 / jobs,
    }


def _database(server: str, name: str) -> tuple[str, bool]:
    """NAME's database (created when missing) and whether it was just created."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    with psycopg.connect(server, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_conninfo(server, dbname=name), not exists


def _drop(server: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkouts", nargs="*", metavar="NAME=CHECKOUT")
    parser.add_argument("--dsn", default=SERVER, help="the server's maintenance database")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--prep", nargs=2, action="append", default=[], metavar=("NAME", "SQL"))
    parser.add_argument(
        "--processes", nargs=2, action="append", default=[], metavar=("NAME", "N"),
        help="NAME's turns drain with N worker processes (default 1)",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument(
        "--child", nargs=4, metavar=("DSN", "JOBS", "FRESH", "P"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        dsn, jobs, fresh, processes = args.child
        print(json.dumps(_turn(dsn, int(jobs), fresh == "1", int(processes))))
        return
    trees = [item.split("=", 1) for item in args.checkouts]
    if len(trees) < 2 or any(len(t) != 2 or not Path(t[1], "pgjobs").is_dir() for t in trees):
        parser.error("give two or more NAME=CHECKOUT, each a directory holding pgjobs/")
    prep = dict(args.prep)
    processes = {name: int(n) for name, n in args.processes}
    databases = {name: f"pgjobs_pairs_{name}" for name, _ in trees}
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in trees}
    try:
        for number in range(args.rounds):
            shift = number % len(trees)
            line = []
            for name, checkout in trees[shift:] + trees[:shift]:
                dsn, fresh = _database(args.dsn, databases[name])
                if fresh and name in prep:
                    _child(checkout, dsn, 1, True, 1)  # migrated before the experiment's SQL
                    import psycopg

                    with psycopg.connect(dsn, autocommit=True) as conn:
                        conn.execute(prep[name])
                    fresh = False
                turn = _child(checkout, dsn, args.jobs, fresh, processes.get(name, 1))
                results[name].append(turn)
                line.append(
                    f"{name} {turn['rate']:,.0f}/s "
                    f"({turn['machine_us']:.0f} / {turn['worker_us']:.0f} µs)"
                )
            print(f"round {number + 1}: " + "  ".join(line), flush=True)
    finally:
        if not args.keep:
            for name in databases.values():
                _drop(args.dsn, name)
    _report(results)


def _child(checkout: str, dsn: str, jobs: int, fresh: bool, processes: int) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(Path(checkout).resolve()))
    done = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            dsn,
            str(jobs),
            "1" if fresh else "0",
            str(processes),
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd="/",
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the turn in {checkout} failed:\n{done.stderr[-3000:]}")
    turn: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return turn


def _report(results: dict[str, list[dict[str, float]]]) -> None:
    print("\nmedians: rate, machine CPU per job, worker CPU per job (the rest: mostly PostgreSQL)")
    for name, turns in results.items():
        rate = statistics.median(t["rate"] for t in turns)
        machine = statistics.median(t["machine_us"] for t in turns)
        worker = statistics.median(t["worker_us"] for t in turns)
        rest = machine - worker
        print(f"  {name:12} {rate:9,.0f}/s {machine:6.1f} µs {worker:6.1f} µs, rest {rest:5.1f} µs")
    names = list(results)
    first = results[names[0]]
    for name in names[1:]:
        ratios = [t["rate"] / f["rate"] for t, f in zip(results[name], first, strict=True)]
        lower = sum(r < 1 for r in ratios)
        print(
            f"  {name}/{names[0]}: median {statistics.median(ratios):.3f}, "
            f"lower in {lower} of {len(ratios)} rounds"
        )


if __name__ == "__main__":
    main()
