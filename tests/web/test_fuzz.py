"""Property-based fuzz of the served OpenAPI spec with schemathesis: no input gets a 5xx.

Valid and invalid requests are generated for every operation from the spec the
server serves, sent with an admin token, and each response is checked: never a
5xx, a status code the spec documents, and a body that matches its schema.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the web extra is not installed: pip install 'pgjobs[web]'")
schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")
hypothesis = pytest.importorskip("hypothesis")

from tests.web.conftest import ADMIN, insert_job  # noqa: E402

# schemathesis itself calls `random` inside some of its strategies, which
# Hypothesis reports with a deprecation warning; it says nothing about the server.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)

# Bounded on purpose: 16 operations x 6 examples, well under a minute.
MAX_EXAMPLES = 6


def _fuzzer(op: Any, base_url: str, checks: list[Any], failures: list[str]) -> Callable[[], None]:
    from hypothesis import strategies as st
    from schemathesis import GenerationMode

    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    @hypothesis.given(
        case=st.one_of(
            op.as_strategy(GenerationMode.POSITIVE), op.as_strategy(GenerationMode.NEGATIVE)
        )
    )
    def run(case: Any) -> None:
        failures.append("")  # one entry per example; replaced by the message on failure
        try:
            case.call_and_validate(base_url=base_url, headers=ADMIN, checks=checks)
        except Exception as exc:
            failures[-1] = f"{op.method.upper()} {op.path}: {str(exc)[:1500]}"
            raise

    return run


def test_no_request_gets_a_server_error(server: Any, conn: Any) -> None:
    from schemathesis import checks as st_checks

    checks = [
        st_checks.not_a_server_error,
        st_checks.status_code_conformance,
        st_checks.response_schema_conformance,
    ]
    for status in ("queued", "failed", "succeeded", "cancelled"):
        insert_job(conn, status=status)
    schema = schemathesis.openapi.from_url(server.url + "api/v1/openapi.json")
    results: list[str] = []
    operations = [operation.ok() for operation in schema.get_all_operations()]
    assert len(operations) == 16
    for op in operations:
        try:
            _fuzzer(op, server.url.rstrip("/"), checks, results)()
        except Exception as exc:  # every operation is fuzzed; failures are listed below
            if not results or not results[-1]:
                results.append(f"{op.method.upper()} {op.path}: {exc!r}"[:1500])
    failures = [r for r in results if r]
    assert len(results) >= 16 * 2
    assert not failures, "\n\n".join(failures)
