"""Property-based fuzz of the served OpenAPI spec with schemathesis: no input gets a 5xx.

Valid and invalid requests are generated for every operation from the spec the
server serves, sent with an admin token, and each response is checked: never a
5xx, a status code the spec documents, and a body that matches its schema.
Hypothesis then sends what schemathesis does not: strings with lone surrogates,
keys given twice, raw bytes in URLs, and bodies under the wrong content type.
"""

from __future__ import annotations

import json
import urllib.parse
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
    assert len(operations) == 18
    for op in operations:
        try:
            _fuzzer(op, server.url.rstrip("/"), checks, results)()
        except Exception as exc:  # every operation is fuzzed; failures are listed below
            if not results or not results[-1]:
                results.append(f"{op.method.upper()} {op.path}: {exc!r}"[:1500])
    failures = [r for r in results if r]
    assert len(results) >= 16 * 2
    assert not failures, "\n\n".join(failures)


# -- what schemathesis does not send: hostile text, repeated keys, wrong content types --

CONTENT_TYPES = [
    None,
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/jsonx",
    "",
]
FIELDS = ["task", "args", "queue", "fingerprint", "priority", "delay", "run_at", "max_attempts"]


def _hostile() -> tuple[Any, Any]:
    """Strategies for bodies and URL parts: lone surrogates, repeated keys, raw bytes, odd types."""
    from hypothesis import strategies as st

    surrogate = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
    text = st.one_of(
        st.text(max_size=8),
        st.builds(lambda a, s, b: a + s + b, st.text(max_size=4), surrogate, st.text(max_size=4)),
        st.sampled_from(["noop", "fragile", "default", "emails", "\x00", "x" * 300]),
    )
    scalar = st.one_of(text, st.integers(-(2**70), 2**70), st.floats(), st.booleans(), st.none())
    value = st.recursive(
        scalar,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)
        ),
        max_leaves=6,
    )
    # Pairs, not a dict: the same key may come twice, as a hand-written body can.
    pairs = st.lists(st.tuples(st.one_of(st.sampled_from(FIELDS), text), value), max_size=5)

    def render(items: list[tuple[str, Any]]) -> bytes:
        inner = ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in items)
        return ("{" + inner + "}").encode()

    body = st.one_of(
        pairs.map(render),
        st.binary(max_size=40),
        st.sampled_from([b"", b"{", b"[]", b"NaN", b'{"task": 1' + b"0" * 5000 + b"}"]),
    )
    raw = st.binary(min_size=1, max_size=6).map(lambda b: "".join(f"%{c:02X}" for c in b))
    segment = st.one_of(raw, text.map(lambda t: urllib.parse.quote(t, errors="surrogatepass")))
    return body, segment


def test_hostile_text_keys_and_content_types_get_no_server_error(server: Any, conn: Any) -> None:
    import httpx
    from hypothesis import strategies as st

    body, segment = _hostile()
    job = insert_job(conn, status="queued", queue="emails")
    templates = [
        ("POST", "/api/v1/jobs"),
        ("POST", "/api/v1/jobs/retry-failed"),
        ("POST", "/api/v1/jobs/cancel-queued"),
        ("POST", f"/api/v1/jobs/{job}/retry"),
        ("POST", f"/api/v1/jobs/{job}/cancel"),
        ("DELETE", "/api/v1/jobs/{segment}"),
        ("GET", "/api/v1/jobs/{segment}"),
        ("POST", "/api/v1/queues/{segment}/pause"),
        ("POST", "/api/v1/queues/{segment}/resume"),
        ("PATCH", "/api/v1/queues/{segment}"),
        ("PATCH", "/api/v1/queues/emails"),
        ("POST", "/api/v1/schedules/{segment}/run"),
        ("GET", "/api/v1/jobs?queue={segment}&task={segment}"),
        ("GET", "/api/v1/jobs?fingerprint={segment}&cursor={segment}"),
    ]
    seen: list[tuple[str, str, int]] = []
    with httpx.Client(base_url=server.url.rstrip("/"), timeout=15) as client:

        @hypothesis.settings(
            max_examples=150,
            deadline=None,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        )
        @hypothesis.given(
            template=st.sampled_from(templates),
            content_type=st.sampled_from(CONTENT_TYPES),
            content=body,
            part=segment,
        )
        @hypothesis.example(
            template=templates[0],
            content_type="application/json",
            content=rb'{"task": "noop", "queue": "\ud800"}',
            part="x",
        )
        @hypothesis.example(
            template=templates[2],
            content_type="text/plain",
            content=rb'{"queue": "\udfff", "queue": "emails"}',
            part="x",
        )
        @hypothesis.example(template=templates[7], content_type=None, content=b"", part="%ED%A0%80")
        @hypothesis.example(
            template=templates[10],
            content_type="application/json",
            content=rb'{"rate_limit": "\ud800/s", "concurrency": 1}',
            part="x",
        )
        @hypothesis.example(
            template=templates[10],
            content_type="application/json",
            content=rb'{"concurrency": 1e400, "key_rate_limit": "1/d"}',
            part="x",
        )
        def run(
            template: tuple[str, str], content_type: str | None, content: bytes, part: str
        ) -> None:
            method, path = template
            headers = dict(ADMIN)
            if content_type is not None:
                headers["Content-Type"] = content_type
            url = path.replace("{segment}", part)
            r = client.request(method, url, content=content or None, headers=headers)
            seen.append((method, url, r.status_code))
            assert r.status_code < 500, f"{method} {url} {content_type} {content[:200]!r}: {r.text}"
            if r.status_code >= 400:
                assert r.json()["error"]["status"] == r.status_code
            # The keep-alive connection survives every answer.
            assert client.get("/healthz").status_code == 200

        run()
    assert len(seen) >= 150
    assert {status for _, _, status in seen} >= {400, 415}
