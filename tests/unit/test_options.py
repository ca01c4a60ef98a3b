"""Enqueue options are checked before anything touches the database."""

import dataclasses
import datetime as dt

import pytest

from pgjobs._options import EnqueueOptions
from pgjobs.errors import ConfigurationError


class _NoOffset(dt.tzinfo):
    """A tzinfo that does not know its offset: the datetime is naive after all."""

    def utcoffset(self, when):
        return None


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"priority": 5}, "priority must be an integer from 0"),
        ({"priority": -1}, "priority"),
        ({"priority": True}, "priority"),
        ({"delay": -1}, "delay must be a finite number"),
        ({"delay": float("inf")}, "delay"),
        ({"run_at": dt.datetime(2030, 1, 1)}, "has no timezone"),
        ({"run_at": dt.datetime(2030, 1, 1, tzinfo=_NoOffset())}, "has no timezone"),
        ({"run_at": dt.datetime.now(dt.UTC), "delay": 1}, "either delay or run_at"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"queue": ""}, "queue name"),
        ({"queue": "x" * 129}, "queue name"),
        ({"fingerprint": ""}, "fingerprint"),
        ({"on_conflict": "ignore"}, "on_conflict"),
        ({"correlation_id": 7}, "correlation_id must be a string, got int 7"),
        ({"correlation_id": ""}, "correlation_id must be 1 to 128 characters"),
        ({"correlation_id": "c" * 129}, "got 129 characters"),
        ({"key": 42}, "key must be a string, got int 42"),
        ({"key": ""}, "key must be 1 to 255 characters"),
        ({"key": "k" * 256}, "got 256 characters"),
        ({"key": "a\x00b"}, "with no NUL"),
    ],
)
def test_bad_options_are_refused(kwargs, needle):
    with pytest.raises(ConfigurationError, match=needle):
        EnqueueOptions(**kwargs)


def test_timedelta_delay_becomes_seconds_and_merge_ignores_none():
    options = EnqueueOptions(delay=dt.timedelta(minutes=2))
    assert options.delay == 120
    merged = options.merge({"queue": "emails", "priority": None})
    assert merged.queue == "emails"
    assert merged.priority == 2
    assert merged.delay == 120
    # Nothing to change: the same (frozen) options, not a copy checked again.
    assert options.merge({}) is options
    assert options.merge({"queue": None}) is options


def test_the_keyword_options_are_the_fields_of_the_checked_options():
    from pgjobs._options import EnqueueKwargs

    assert set(EnqueueKwargs.__annotations__) == {
        f.name for f in dataclasses.fields(EnqueueOptions)
    }
    assert EnqueueKwargs.__required_keys__ == frozenset()


def test_an_unknown_option_is_a_type_error_that_names_it():
    import pgjobs

    app = pgjobs.App("postgresql://unused", strict=False)

    @app.task(name="t")
    def t() -> None:
        pass

    for call in (
        lambda: EnqueueOptions().merge({"prioirty": 1}),
        lambda: t.options(prioirty=1),
        lambda: app.job("t", prioirty=1),
    ):
        with pytest.raises(TypeError, match=r"unknown enqueue option.*prioirty.*the options are"):
            call()


def test_task_options_and_app_job_apply_and_check_the_options():
    import pgjobs

    app = pgjobs.App("postgresql://unused", strict=False)

    @app.task(name="t", queue="q", max_attempts=7)
    def t(n: int) -> None:
        pass

    at = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    call = t.options(priority=0, run_at=at, fingerprint="f", on_conflict="skip", meta={"m": 1})
    assert call.options == EnqueueOptions(
        queue="q",
        priority=0,
        run_at=at,
        max_attempts=7,
        fingerprint="f",
        on_conflict="skip",
        meta={"m": 1},
    )
    assert t.options().options is t.defaults
    assert t.options(delay=dt.timedelta(seconds=3)).options.delay == 3
    assert app.job("t", {"n": 1}, queue="other").options == EnqueueOptions(
        queue="other", max_attempts=7
    )
    assert app.job("elsewhere", delay=5).options == EnqueueOptions(delay=5)
    with pytest.raises(ConfigurationError, match="priority"):
        t.options(priority=9)
    with pytest.raises(ConfigurationError, match="delay"):
        app.job("t", {"n": 1}, delay="x")


@pytest.mark.parametrize("name", ["", "x" * 256, "a\x00b"])
def test_unusable_task_names_fail_at_registration(name):
    import pgjobs

    app = pgjobs.App()
    with pytest.raises(ConfigurationError, match="is not usable"):
        app.task(name=name)(lambda: None)


def test_a_run_at_offset_with_seconds_becomes_utc_and_keeps_its_instant():
    odd = dt.timezone(dt.timedelta(hours=1, seconds=30))
    at = dt.datetime(2030, 1, 1, 12, tzinfo=odd)
    assert EnqueueOptions(run_at=at).run_at.utcoffset() == dt.timedelta(0)
    assert EnqueueOptions(run_at=at).run_at == at
    usual = dt.datetime(2030, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))
    assert EnqueueOptions(run_at=usual).run_at.tzinfo is usual.tzinfo


def test_a_job_made_by_a_task_is_an_ordinary_frozen_job_spec():
    import dataclasses

    import pgjobs
    from pgjobs._enqueue import JobSpec, new_spec

    app = pgjobs.App("postgresql://unused", strict=False)

    @app.task(name="made", queue="q")
    def made(n: int) -> None:
        pass

    job = made.job(n=1)
    assert type(job) is JobSpec
    assert job == JobSpec("made", '{"n":1}', made.defaults)
    assert repr(job) == repr(JobSpec("made", '{"n":1}', made.defaults))
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.task = "other"  # type: ignore[misc]
    assert dataclasses.replace(job, task="other") == new_spec("other", '{"n":1}', made.defaults)


def test_a_bulk_copy_of_jobs_due_now_leaves_run_at_to_the_column_default():
    import datetime as dt

    from pgjobs._enqueue import _COPY, _COPY_DUE_NOW, JobSpec, _all_due_now, copy_chunks

    now = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    due = [JobSpec("t", '{"n":1}', EnqueueOptions()), JobSpec("t", "{}", EnqueueOptions(delay=0))]
    later = [*due, JobSpec("t", "{}", EnqueueOptions(delay=5))]
    assert _all_due_now(due)
    assert not _all_due_now(later)
    assert not _all_due_now([*due, JobSpec("t", "{}", EnqueueOptions(run_at=now))])

    def columns(statement: str) -> list[str]:
        return statement.split("(", 1)[1].split(")", 1)[0].split(", ")

    # Each line has one field per column of the statement it is written for.
    lines = "".join(copy_chunks(due, [1, 2], None)).splitlines()
    assert "run_at" not in columns(_COPY_DUE_NOW)
    assert [len(line.split("\t")) for line in lines] == [len(columns(_COPY_DUE_NOW))] * 2
    lines = "".join(copy_chunks(later, [1, 2, 3], now)).splitlines()
    assert [len(line.split("\t")) for line in lines] == [len(columns(_COPY))] * 3
    run_at = columns(_COPY).index("run_at")
    assert [line.split("\t")[run_at] for line in lines] == [
        now.isoformat(),
        now.isoformat(),
        (now + dt.timedelta(seconds=5)).isoformat(),
    ]


def test_a_correlation_id_is_stored_in_meta_and_survives_a_merge():
    opts = EnqueueOptions(meta={"tag": "a"}).merge({"correlation_id": "req-1"})
    assert opts.meta == {"tag": "a", "correlation_id": "req-1"}
    # meta given later (or on its own) keeps the id: the option is the source.
    again = opts.merge({"meta": {"tag": "b"}})
    assert again.meta == {"tag": "b", "correlation_id": "req-1"}
    assert EnqueueOptions().meta == {}  # none given: meta untouched


class _RunningJob:
    """What a JobContext reads of the job it runs for."""

    id, attempts, task, queue, checkpoint = 1, 1, "t", "q", None
    meta: dict[str, object] = {}  # noqa: RUF012 - read only


def test_jobs_enqueued_during_a_run_inherit_its_id_and_still_share_their_options():
    from pgjobs import _enqueue
    from pgjobs._context import JobContext, reset_current, set_current

    shared = EnqueueOptions(queue="q")
    own = EnqueueOptions(correlation_id="mine")
    specs = [_enqueue.new_spec("t", "{}", shared) for _ in range(3)]
    specs.append(_enqueue.new_spec("t", "{}", own))
    assert _enqueue.stamp(specs, None) is specs  # outside a run: nothing to add
    running = JobContext(_RunningJob(), worker_id=None, correlation_id="parent-id")
    token = set_current(running)
    try:
        stamped = _enqueue.stamp(specs, None)
    finally:
        reset_current(token)
    assert [s.options.meta.get("correlation_id") for s in stamped] == [
        "parent-id",
        "parent-id",
        "parent-id",
        "mine",
    ]
    assert len({id(s.options) for s in stamped[:3]}) == 1  # converted once for the bulk paths
    assert stamped[3] is specs[3]
    assert shared.meta == {}  # the task's defaults are not changed
