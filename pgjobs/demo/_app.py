"""The example App that `python -m pgjobs demo` runs: a few tasks that imitate a web shop's jobs."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

from pgjobs._app import App
from pgjobs._enqueue import JobSpec
from pgjobs._job import Priority
from pgjobs._retry import Constant

#: The demo's own queues, so a demo pointed at a real database never hands its
#: jobs to that database's workers (nor takes theirs).
QUEUES = ("demo-emails", "demo-media", "demo-crm", "demo-billing")

# The DSN is set by the demo before anything is enqueued. The App can also be
# run on its own: `python -m pgjobs worker pgjobs.demo._app:app`.
app = App()

# Short, constant backoffs keep the whole demo within a few seconds. A real
# application would keep the default (exponential) policy.
_QUICK_RETRY = Constant(seconds=0.5, jitter=0.2)

# How many times each flaky call has been attempted, in this process. The demo
# runs its worker in-process, so a module-level counter is enough to make a job
# fail a chosen number of times and then succeed.
_crm_attempts: dict[int, int] = {}


class CrmUnavailableError(ConnectionError):
    """The imitation CRM did not answer (raised on purpose, then retried)."""


class PaymentDeclinedError(Exception):
    """The imitation payment provider refused the card (raised on every attempt)."""


@app.task(name="demo.send_email", queue="demo-emails", priority=Priority.NORMAL)
async def send_email(user_id: int, template: str) -> dict[str, Any]:
    """Pretend to send an email: an async handler, run as a task on the worker's loop."""
    await asyncio.sleep(random.uniform(0.02, 0.12))
    return {"to": f"user{user_id}@example.com", "template": template}


@app.task(name="demo.resize_image", queue="demo-media", timeout=10)
def resize_image(image_id: int, width: int = 800) -> dict[str, int]:
    """Pretend to resize an image: a sync handler, run in the worker's thread pool."""
    time.sleep(random.uniform(0.03, 0.15))
    return {"image_id": image_id, "width": width, "height": width * 3 // 4}


@app.task(name="demo.sync_crm", queue="demo-crm", max_attempts=4, retry=_QUICK_RETRY)
async def sync_crm(account_id: int, failures: int) -> None:
    """Push an account to a flaky CRM: the first `failures` attempts fail, then it works.

    Raises:
        CrmUnavailableError: on purpose, for the first `failures` attempts.
    """
    attempt = _crm_attempts.get(account_id, 0) + 1
    _crm_attempts[account_id] = attempt
    await asyncio.sleep(random.uniform(0.01, 0.05))
    if attempt <= failures:
        raise CrmUnavailableError(f"CRM timed out syncing account {account_id} (try {attempt})")


@app.task(name="demo.build_report", queue="demo-media", priority=Priority.LOW)
def build_report(report_id: int) -> dict[str, int]:
    """Build a slow, unhurried report: low priority, so it yields to everything else."""
    time.sleep(random.uniform(0.1, 0.3))
    return {"report_id": report_id, "rows": report_id * 17 % 1000}


@app.task(name="demo.charge_card", queue="demo-billing", max_attempts=3, retry=_QUICK_RETRY)
def charge_card(order_id: int, amount_cents: int) -> None:
    """Charge a card that is always declined: the job ends `failed`, the dead-letter state.

    Raises:
        PaymentDeclinedError: always.
    """
    raise PaymentDeclinedError(
        f"card declined for order {order_id} ({amount_cents / 100:.2f} EUR): insufficient funds"
    )


#: The fewest jobs `sample_jobs` makes: one of each kind, and a few ordinary ones.
MIN_JOBS = 10


@dataclass(frozen=True, slots=True)
class Sample:
    """The demo's jobs, ready for one bulk insert, and what they contain.

    Attributes:
        bulk: every job but the doomed one, in random order, for `enqueue_many`.
        doomed_order: the order id of the card charge that always fails
            (enqueued on its own, to show the single-job call too).
        delayed: jobs given a delay of one to two seconds.
        flaky: jobs that fail once or twice before they succeed.
    """

    bulk: list[JobSpec]
    doomed_order: int
    delayed: int
    flaky: int


def sample_jobs(count: int, seed: int = 7) -> Sample:
    """The demo's mix of `count` jobs: mixed priorities, some delayed, some flaky, one doomed.

    Args:
        count: how many jobs in all, at least MIN_JOBS.
        seed: the random seed, so two runs make the same mix.

    Returns:
        The jobs, not yet written.
    """
    rng = random.Random(seed)
    _crm_attempts.clear()  # the same account ids again: let each fail afresh
    flaky = max(2, count * 8 // 100)
    delayed = max(2, count // 10)
    reports = max(1, count // 20)
    ordinary = count - 1 - flaky - delayed - reports
    bulk: list[JobSpec] = []
    for i in range(flaky):
        bulk.append(sync_crm.job(account_id=i + 1, failures=1 + i % 2))
    for i in range(delayed):
        call = send_email.options(delay=round(rng.uniform(1.0, 2.0), 3))
        bulk.append(call.job(user_id=10_000 + i, template="reminder"))
    for i in range(reports):
        bulk.append(build_report.job(report_id=i + 1))
    for i in range(ordinary):
        roll = rng.random()
        if roll < 0.08:
            # Password resets jump the queue: priority HIGH beats the backlog.
            call = send_email.options(priority=Priority.HIGH)
            bulk.append(call.job(user_id=i, template="password_reset"))
        elif roll < 0.30:
            call = send_email.options(priority=Priority.BULK)
            bulk.append(call.job(user_id=i, template="newsletter"))
        elif roll < 0.60:
            bulk.append(send_email.job(user_id=i, template="welcome"))
        else:
            bulk.append(resize_image.job(image_id=i, width=rng.choice((320, 800, 1600))))
    # Mixed order, so that the order jobs run in comes from priorities, not from insertion.
    rng.shuffle(bulk)
    return Sample(bulk=bulk, doomed_order=1042, delayed=delayed, flaky=flaky)
