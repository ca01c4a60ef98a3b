"""Backoff policies are pure: delays, caps and jitter bounds."""

import random

import pytest

from pgjobs import Constant, Exponential, Linear
from pgjobs.errors import ConfigurationError


def test_exponential_doubles_from_base_without_jitter():
    policy = Exponential(base=1, factor=2, jitter=0)
    assert [policy.delay(n) for n in range(1, 6)] == [1, 2, 4, 8, 16]


def test_linear_and_constant():
    assert [Linear(step=5, jitter=0).delay(n) for n in (1, 2, 3)] == [5, 10, 15]
    assert [Constant(seconds=3, jitter=0).delay(n) for n in (1, 7, 70)] == [3, 3, 3]


def test_cap_applies_even_to_huge_attempt_numbers():
    policy = Exponential(base=1, factor=2, cap=60, jitter=0)
    assert policy.delay(10_000) == 60


def test_jitter_stays_within_its_fraction_and_the_cap():
    rng = random.Random(7)
    policy = Exponential(base=10, factor=1, cap=10.5, jitter=0.1)
    delays = [policy.delay(1, rng) for _ in range(500)]
    assert min(delays) >= 9.0
    assert max(delays) <= 10.5
    assert len(set(delays)) > 100  # actually jittered


@pytest.mark.parametrize(
    "make",
    [lambda: Exponential(jitter=1.5), lambda: Exponential(cap=-1), lambda: Linear(jitter=-0.1)],
)
def test_bad_parameters_are_rejected(make):
    with pytest.raises(ConfigurationError):
        make()
