"""`python -m pgjobs doctor`: is the queue's database healthy, and if not, what to do."""

from __future__ import annotations

import argparse
import dataclasses
from collections import Counter

from pgjobs import _doctor
from pgjobs.cli._terminal import add_dsn, add_json, connection, print_json


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `doctor` command."""
    p = sub.add_parser(
        "doctor",
        help="check the database's health as a queue sees it",
        description="Check the pgjobs database: dead rows and bloat, what holds back "
        "vacuum, idle transactions, the NOTIFY queue, migrations, autovacuum settings, "
        "connections, listeners, jobs on dead workers, queue delays and failures. "
        "Exits 0 when all is ok, 1 on a warning, 2 on a failure.",
    )
    add_dsn(p)
    add_json(p, help="print the findings as JSON: a list of {check, verdict, value, detail, fix}")
    p.set_defaults(handler=_run_doctor)


def render(findings: list[_doctor.Finding]) -> str:
    """One line per finding, verdict first; a fix under each that is not ok; a summary."""
    lines = []
    for f in findings:
        value = "" if f.value is None else f" = {f.value}"
        lines.append(f"{f.verdict.upper():<4}  {f.check}{value}: {f.detail}")
        if f.fix:
            lines.append(f"      fix: {f.fix}")
    counts = Counter(f.verdict for f in findings)
    lines.append(f"{counts['ok']} ok, {counts['warn']} warn, {counts['fail']} fail")
    return "\n".join(lines)


def _run_doctor(args: argparse.Namespace) -> int:
    with connection(args.dsn) as conn:
        findings = _doctor.diagnose(conn)
    if args.json:
        print_json([dataclasses.asdict(f) for f in findings])
    else:
        print(render(findings))
    return _doctor.exit_code(findings)
