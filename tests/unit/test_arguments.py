"""Call arguments map to parameter names and back, whatever the signature's shape."""

import inspect

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgjobs._task import Binder, bind_arguments, call_arguments
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


def _simple(a, b, c=3, *, d, e=5):
    return a, b, c, d, e


def _no_params():
    return None


@pytest.mark.parametrize("fn", [_simple, _no_params, handler])
@given(
    args=st.lists(st.integers(), max_size=5).map(tuple),
    kwargs=st.dictionaries(st.sampled_from("abcdexz"), st.integers(), max_size=6),
)
def test_the_fast_binder_agrees_with_signature_bind(fn, args, kwargs):
    """Same mapping for every call that fits, and an ArgumentsError for every one that does not."""
    sig = inspect.signature(fn)
    try:
        expected = bind_arguments(sig, args, kwargs)
    except ArgumentsError:
        with pytest.raises(ArgumentsError):
            Binder(sig)(args, kwargs)
    else:
        assert Binder(sig)(args, kwargs) == expected


@pytest.mark.parametrize("fn", [_simple, _no_params, handler])
@given(stored=st.dictionaries(st.sampled_from("abcdexz"), st.integers(), max_size=6))
def test_the_fast_call_path_agrees_with_call_arguments(fn, stored):
    """The handler gets the same call, and a mismatch is refused the same way."""
    sig = inspect.signature(fn)
    try:
        args, kwargs = call_arguments(sig, stored)
    except ArgumentsError:
        with pytest.raises(ArgumentsError):
            Binder(sig).call(stored)
    else:
        fast_args, fast_kwargs = Binder(sig).call(stored)
        assert sig.bind(*fast_args, **fast_kwargs).arguments == sig.bind(*args, **kwargs).arguments
