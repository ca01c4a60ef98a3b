"""Short task names: resolve_task_name picks the one registered name they stand for."""

import pytest

from pgjobs._app import resolve_task_name
from pgjobs.errors import AmbiguousTaskError, UnknownTaskError

NAMES = [
    "myapp.jobs.send_welcome",
    "myapp.jobs.Mailer.send",
    "myapp.jobs.cleanup",
    "reports.cleanup",
    "record",
]


@pytest.mark.parametrize(
    ("given", "full"),
    [
        ("myapp.jobs.send_welcome", "myapp.jobs.send_welcome"),  # the full name
        ("send_welcome", "myapp.jobs.send_welcome"),  # the last dotted part
        ("Mailer.send", "myapp.jobs.Mailer.send"),  # the qualname
        ("send", "myapp.jobs.Mailer.send"),
        ("jobs.cleanup", "myapp.jobs.cleanup"),  # a longer tail
        ("record", "record"),
    ],
)
def test_a_name_or_an_unambiguous_tail_resolves_to_the_full_name(given, full):
    assert resolve_task_name(NAMES, given) == full


def test_an_exact_name_wins_over_tails_that_end_with_it():
    assert resolve_task_name(["cleanup", "reports.cleanup"], "cleanup") == "cleanup"


def test_a_tail_of_two_names_is_ambiguous_and_lists_them():
    with pytest.raises(AmbiguousTaskError) as raised:
        resolve_task_name(NAMES, "cleanup")
    assert raised.value.candidates == ["myapp.jobs.cleanup", "reports.cleanup"]
    assert "myapp.jobs.cleanup, reports.cleanup" in str(raised.value)
    assert "give the full name" in str(raised.value)


@pytest.mark.parametrize("given", ["welcome", "nd_welcome", "jobs", "myapp", ".send", ""])
def test_a_name_that_is_no_dotted_tail_is_unknown(given):
    with pytest.raises(UnknownTaskError) as raised:
        resolve_task_name(NAMES, given)
    assert raised.value.known == sorted(NAMES)
