"""Call arguments map to parameter names and back, whatever the signature's shape."""

import inspect

import pytest

from pgjobs._task import bind_arguments, call_arguments
from pgjobs.errors import ArgumentsError


def handler(a, /, b, *rest, c=3, **extra):
    return a, b, rest, c, extra


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((1, 2), {}),
        ((1, 2, 9, 8), {"c": 4}),
        ((1,), {"b": 2, "z": 5}),
        ((1, 2), {"c": None, "y": [1]}),
    ],
)
def test_bind_then_call_reproduces_the_call(args, kwargs):
    sig = inspect.signature(handler)
    stored = bind_arguments(sig, args, kwargs)
    again_args, again_kwargs = call_arguments(sig, stored)
    assert handler(*again_args, **again_kwargs) == handler(*args, **kwargs)


def test_defaults_are_not_stored():
    assert bind_arguments(inspect.signature(handler), (1, 2), {}) == {"a": 1, "b": 2}


def test_wrong_calls_fail_at_bind_time():
    with pytest.raises(ArgumentsError, match="missing a required argument"):
        bind_arguments(inspect.signature(handler), (1,), {})


def test_stored_arguments_from_another_version_are_refused():
    def new(a, b):
        return a + b

    with pytest.raises(ArgumentsError, match=r"\['legacy'\] are not parameters"):
        call_arguments(inspect.signature(new), {"a": 1, "b": 2, "legacy": 3})
    with pytest.raises(ArgumentsError, match="missing a required argument"):
        call_arguments(inspect.signature(new), {"a": 1})
