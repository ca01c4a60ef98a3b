"""The pytest plugin's entry point, where it finds its server, and assert_enqueued's matching."""

from __future__ import annotations

import importlib
import tomllib

import pytest

from pgjobs.errors import ConfigurationError
from pgjobs.testing._database import configured_server
from pgjobs.testing._enqueued import LISTED, failure_message, matching
from tests.conftest import REPO


def test_the_pytest11_entry_point_names_the_plugin_module():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    plugins = config["project"]["entry-points"]["pytest11"]
    assert plugins == {"pgjobs": "pgjobs.testing._plugin"}
    plugin = importlib.import_module(plugins["pgjobs"])
    for fixture in ("pgjobs_database", "pgjobs_dsn", "pgjobs_app", "pgjobs_drain"):
        assert hasattr(plugin, fixture), fixture


@pytest.mark.parametrize(
    ("environ", "server"),
    [
        ({}, None),
        ({"PGJOBS_DSN": "", "DATABASE_URL": ""}, None),
        ({"DATABASE_URL": "postgresql://u@h/app"}, "postgresql://u@h/app"),
        ({"DATABASE_URL": "postgresql://u@h/app", "PGJOBS_DSN": "postgresql://u@h/jobs"},
         "postgresql://u@h/jobs"),
        ({"PGJOBS_DSN": "postgresql://u@h/jobs", "PGJOBS_TEST_DSN": "postgresql://t@h/postgres"},
         "postgresql://t@h/postgres"),
        ({"PGJOBS_TEST_DSN": "postgresql+psycopg://t@h/postgres"}, "postgresql://t@h/postgres"),
    ],
)  # fmt: skip
def test_the_server_is_the_first_dsn_set_and_none_means_embedded(environ, server):
    assert configured_server(environ) == server


def test_a_malformed_server_dsn_says_so():
    with pytest.raises(ConfigurationError, match="malformed DSN"):
        configured_server({"PGJOBS_TEST_DSN": "host=h port"})


def _job(id_: int, task: str, **args: object) -> dict[str, object]:
    return {"id": id_, "task": task, "queue": "default", "args": args}


QUEUED = [
    _job(1, "send", user_id=1, loud=True),
    _job(2, "send", user_id=2),
    _job(3, "resize", image={"id": 7, "sizes": [1, 2]}),
    _job(4, "send", user_id=1),
]


@pytest.mark.parametrize(
    ("task", "args", "ids"),
    [
        ("send", None, [1, 2, 4]),
        ("send", {}, [1, 2, 4]),
        ("send", {"user_id": 1}, [1, 4]),
        ("send", {"user_id": 1, "loud": True}, [1]),
        ("send", {"loud": 1}, []),  # JSON's true is not 1
        ("send", {"user_id": 1.0}, []),  # nor is 1.0 the integer 1
        ("send", {"missing": None}, []),
        ("resize", {"image": {"sizes": [1, 2], "id": 7}}, [3]),  # key order does not matter
        ("resize", {"image": {"id": 7}}, []),  # a value matches whole, not in part
        ("other", None, []),
    ],
)
def test_a_job_matches_its_task_and_the_args_given(task, args, ids):
    assert [job["id"] for job in matching(QUEUED, task, args)] == ids


def test_the_failure_message_says_what_was_expected_and_lists_the_queue():
    message = failure_message("send", {"user_id": 3}, 2, [], QUEUED)
    assert message.splitlines() == [
        "expected 2 queued jobs of task 'send' with args containing {\"user_id\": 3}, found none.",
        "Queued jobs (4):",
        '  #1 send {"loud": true, "user_id": 1} queue=default',
        '  #2 send {"user_id": 2} queue=default',
        '  #3 resize {"image": {"id": 7, "sizes": [1, 2]}} queue=default',
        '  #4 send {"user_id": 1} queue=default',
    ]


def test_the_failure_message_lists_a_long_queue_in_part():
    queued = [_job(n, "send", n=n) for n in range(1, LISTED + 6)]
    lines = failure_message("send", None, 0, queued, queued).splitlines()
    assert lines[0] == f"expected 0 queued jobs of task 'send', found {LISTED + 5}."
    assert lines[-2] == f'  #{LISTED} send {{"n": {LISTED}}} queue=default'
    assert lines[-1] == "  ... and 5 more"
    assert failure_message("send", None, 1, [], []).splitlines() == [
        "expected 1 queued job of task 'send', found none.",
        "No job is queued.",
    ]
