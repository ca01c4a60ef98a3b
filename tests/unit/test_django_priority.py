"""Django's task priority onto pgjobs' priority, and the worker ids read back from a job row."""

from __future__ import annotations

import pytest

from pgjobs.contrib.django._priority import to_pgjobs


def test_every_django_priority_maps_and_higher_never_runs_later():
    mapped = [to_pgjobs(p) for p in range(-100, 101)]
    assert set(mapped) == {0, 1, 2, 3, 4}
    # Django runs higher first, pgjobs lower first: the map never inverts an order.
    assert mapped == sorted(mapped, reverse=True)


@pytest.mark.parametrize(
    ("django", "pgjobs"),
    [
        (100, 0),
        (60, 0),
        (59, 1),
        (20, 1),
        (19, 2),
        (0, 2),  # Django's default priority is pgjobs' default, NORMAL
        (-19, 2),
        (-20, 3),
        (-59, 3),
        (-60, 4),
        (-100, 4),
    ],
)
def test_the_bands_of_the_readme_table(django, pgjobs):
    assert to_pgjobs(django) == pgjobs


@pytest.mark.parametrize("priority", [-101, 101])
def test_out_of_range_is_refused(priority):
    with pytest.raises(ValueError, match="-100 to 100"):
        to_pgjobs(priority)


def test_worker_ids_one_per_attempt_from_what_the_row_recorded():
    from pgjobs.contrib.django._backend import worker_ids

    row = {
        "attempts": 3,
        "status": "succeeded",
        "worker_id": None,
        "errors": [
            {"attempt": 1, "traceback": "Traceback ...\nValueError: x\npgjobs worker 7\n"},
            {"attempt": 2, "traceback": "an attempt given up by a stop, with no note"},
        ],
        "result": {"return_value": 1, "worker_id": "9"},
    }
    assert worker_ids(row) == ["7", "unknown", "9"]
    running = {**row, "status": "running", "worker_id": 12, "result": None}
    assert worker_ids(running) == ["7", "unknown", "12"]
    assert worker_ids({**row, "attempts": 0, "errors": [], "status": "queued"}) == []
