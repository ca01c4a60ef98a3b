"""The OpenAPI 3.1 description of the HTTP API, written by hand next to the handlers in _api."""

from __future__ import annotations

from typing import Any

from pgjobs._admin import STATES
from pgjobs.web._chart import RANGES
from pgjobs.web._http import MAX_PAGE, ORDERS

_TS = {"type": "string", "format": "date-time"}
_TS_NULL = {"type": ["string", "null"], "format": "date-time"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        400: (
            "Malformed input (a filter, cursor, id or JSON body; a key given twice, a lone "
            "surrogate, a URL that is not UTF-8), or a Host the dashboard does not serve"
        ),
        401: "No or unknown token",
        403: (
            "A viewer asked for an admin action, a browser request from another origin, "
            "or a session-cookie change without X-CSRF-Token"
        ),
        404: (
            "No such job, schedule, queue or endpoint (a name with a line break matches no route)"
        ),
        409: "The job's state does not allow it",
        413: "The body is too large",
        415: "A body (or Content-Type) that is not application/json",
        422: "The body is JSON but not a valid request",
        503: "The database is unreachable or its schema is not current",
    }
    common = (400, 401, 403, 503)
    return {str(s): _json(_ref("Error"), text[s]) for s in sorted({*common, *statuses})}


_COUNT_LIMIT = {"type": ["integer", "null"], "minimum": 1}
_RATE = {"type": ["string", "null"], "pattern": "^[1-9][0-9]{0,8}/[smh]$"}
#: A queue's limits (pgjobs/_queue.py, LIMITS), as the API shows and takes them.
_LIMIT_PROPERTIES: dict[str, Any] = {
    "concurrency": _COUNT_LIMIT,
    "key_concurrency": _COUNT_LIMIT,
    "rate_limit": _RATE,
    "rate_burst": _COUNT_LIMIT,
    "key_rate_limit": _RATE,
    "key_rate_burst": _COUNT_LIMIT,
}

_JOB_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "A job id",
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}
_QUEUE = {
    "name": "name",
    "in": "path",
    "required": True,
    "description": "A queue name",
    "schema": {"type": "string", "minLength": 1, "maxLength": 128},
}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["status", "message"],
                "properties": {
                    "status": {"type": "integer"},
                    "message": {"type": "string"},
                    "known_tasks": {"type": "array", "items": {"type": "string"}},
                    "allowed": {"type": "array", "items": {"type": "string"}},
                    "existing_id": {"type": ["integer", "null"]},
                },
            }
        },
    },
    "JobSummary": {
        "type": "object",
        "required": ["id", "queue", "task", "state", "status", "priority", "attempts"],
        "properties": {
            "id": {"type": "integer"},
            "queue": {"type": "string"},
            "task": {"type": "string"},
            "state": {"type": "string", "enum": list(STATES)},
            "status": {"type": "string"},
            "priority": {"type": "integer", "minimum": 0, "maximum": 4},
            "attempts": {"type": "integer"},
            "max_attempts": {"type": "integer"},
            "run_at": _TS,
            "created_at": _TS,
            "started_at": {"type": ["string", "null"], "format": "date-time"},
            "last_error_type": {"type": ["string", "null"]},
            "last_error_message": {"type": ["string", "null"]},
            "last_error_at": {"type": ["string", "null"]},
            "progress": {
                "type": ["object", "null"],
                "description": "The latest current_job().progress(): done, total, message, at",
            },
        },
    },
    "Job": {
        "type": "object",
        "required": ["id", "queue", "task", "state", "status", "args", "errors"],
        "properties": {
            "id": {"type": "integer"},
            "queue": {"type": "string"},
            "task": {"type": "string"},
            "state": {"type": "string", "enum": list(STATES)},
            "status": {
                "type": "string",
                "enum": ["queued", "blocked", "running", "succeeded", "failed", "cancelled"],
            },
            "priority": {"type": "integer"},
            "args": {
                "type": "object",
                "description": "Secret-looking keys are '[redacted]' for viewers",
            },
            "attempts": {"type": "integer"},
            "max_attempts": {"type": "integer"},
            "fingerprint": {"type": ["string", "null"]},
            "worker_id": {"type": ["integer", "null"]},
            "run_at": _TS,
            "created_at": _TS,
            "started_at": _TS_NULL,
            "finished_at": _TS_NULL,
            "errors": {
                "type": "array",
                "description": "One per failed attempt: attempt, at, type, message, traceback",
                "items": {"type": "object"},
            },
            "result": {},
            "meta": {"type": "object"},
            "progress": {
                "type": ["object", "null"],
                "description": "The latest current_job().progress(): done, total, message, at",
            },
            "snoozes": {"type": "integer"},
            "cancel_requested_at": _TS_NULL,
            "cancelled_by": {"type": ["string", "null"]},
        },
    },
    "JobList": {
        "type": "object",
        "required": ["jobs", "next_cursor"],
        "properties": {
            "jobs": {"type": "array", "items": _ref("JobSummary")},
            "next_cursor": {
                "type": ["string", "null"],
                "description": "Pass as ?cursor= for the next page; null on the last page",
            },
        },
    },
    "Submission": {
        "type": "object",
        "required": ["task"],
        "additionalProperties": False,
        "properties": {
            "task": {"type": "string", "description": "A task the dashboard's App registers"},
            "args": {"type": "object", "description": "The task's arguments by name"},
            "queue": {"type": "string", "description": "Default: the task's queue"},
            "priority": {"type": "integer", "minimum": 0, "maximum": 4},
            "delay": {"type": "number", "minimum": 0, "description": "Seconds from now"},
            "run_at": {"type": "string", "format": "date-time"},
            "fingerprint": {"type": "string", "description": "Unique among active jobs"},
            "max_attempts": {"type": "integer", "minimum": 1, "maximum": 1000},
        },
    },
    "BulkFilter": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"queue": {"type": "string"}, "task": {"type": "string"}},
    },
    "BulkResult": {
        "type": "object",
        "required": ["jobs", "per_queue"],
        "properties": {
            "jobs": {"type": "integer"},
            "per_queue": {"type": "object", "additionalProperties": {"type": "integer"}},
        },
    },
    "Count": {
        "type": "object",
        "required": ["value", "kind"],
        "properties": {
            "value": {"type": "integer"},
            "kind": {"type": "string", "enum": ["exact", "at_least", "estimate", "below"]},
        },
    },
    "Queue": {
        "type": "object",
        "required": ["name", "paused", "available", "scheduled", "running"],
        "properties": {
            "name": {"type": "string"},
            "paused": {"type": "boolean"},
            "available": {"type": "integer"},
            "scheduled": {"type": "integer"},
            "running": {"type": "integer"},
            "oldest_available_seconds": {"type": ["number", "null"]},
            "succeeded": _ref("Count"),
            "failed": _ref("Count"),
            "cancelled": _ref("Count"),
            **_LIMIT_PROPERTIES,
        },
    },
    "QueueLimits": {
        "type": "object",
        "description": (
            "Some of a queue's limits, as app.queue takes them; null removes one. A rate "
            "removed takes its burst with it unless the burst is given too."
        ),
        "minProperties": 1,
        "additionalProperties": False,
        "properties": _LIMIT_PROPERTIES,
    },
    "Breaker": {
        "type": "object",
        "required": ["task", "state", "failures", "cooldown", "consecutive_failures"],
        "properties": {
            "task": {"type": "string"},
            "state": {"type": "string", "enum": ["closed", "open", "half_open"]},
            "failures": {"type": "integer", "minimum": 1},
            "cooldown": {"type": "number", "exclusiveMinimum": 0},
            "consecutive_failures": {"type": "integer", "minimum": 0},
            "opened_at": {"type": ["string", "null"], "format": "date-time"},
            "retry_at": {"type": ["string", "null"], "format": "date-time"},
            "retry_in_seconds": {"type": ["number", "null"]},
            "trial_job_id": {"type": ["integer", "null"]},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    },
    "Leader": {
        "type": "object",
        "required": ["known", "elected"],
        "properties": {
            "known": {"type": "boolean"},
            "elected": {"type": "boolean"},
            "backend_pid": {"type": ["integer", "null"]},
            "worker_pid": {"type": ["integer", "null"]},
            "worker_id": {"type": ["integer", "null"]},
            "host": {"type": ["string", "null"]},
        },
    },
}


def spec(server_url: str = "") -> dict[str, Any]:
    """The OpenAPI document; `server_url` is where the dashboard is served."""
    admin: list[dict[str, list[str]]] = [{"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pgjobs HTTP API",
            "version": "1",
            "description": (
                "Submit, inspect, retry and cancel pgjobs jobs over HTTP. Authenticate with "
                "`Authorization: Bearer TOKEN`; viewer tokens read, admin tokens also act. "
                "Bodies are `application/json` (anything else is 415), each key once. "
                "A change made with the dashboard's session cookie instead must come from "
                "the dashboard's own origin and carry its CSRF token in `X-CSRF-Token`."
            ),
        },
        "servers": [{"url": server_url or "/"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _SCHEMAS,
        },
        "paths": {
            "/healthz": {
                "get": {
                    "summary": "The database is reachable and its schema current",
                    "security": [],
                    "responses": {
                        "200": _json({"type": "object"}, "Healthy"),
                        "503": _json({"type": "object"}, "Unhealthy, with the reason"),
                    },
                }
            },
            "/api/v1/jobs": {
                "get": {
                    "summary": "List jobs, newest first (keyset pages)",
                    "parameters": [
                        {
                            "name": "status",
                            "in": "query",
                            "schema": {"type": "string", "enum": list(STATES)},
                        },
                        {"name": "queue", "in": "query", "schema": {"type": "string"}},
                        {"name": "task", "in": "query", "schema": {"type": "string"}},
                        {"name": "fingerprint", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "order",
                            "in": "query",
                            "schema": {"type": "string", "enum": list(ORDERS)},
                        },
                        {
                            "name": "args",
                            "in": "query",
                            "description": "A JSON object the jobs' args contain (jsonb @>)",
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "error",
                            "in": "query",
                            "description": "Text in any recorded error (any case)",
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
                        },
                        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {"200": _json(_ref("JobList"), "A page"), **_errors()},
                },
                "post": {
                    "summary": "Submit a job (admin)",
                    "security": admin,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("Submission")}},
                    },
                    "responses": {
                        "201": _json(_ref("Job"), "The new job"),
                        **_errors(409, 413, 415, 422),
                    },
                },
            },
            "/api/v1/jobs/retry-failed": {
                "post": {
                    "summary": "Retry every failed job of a task and/or queue (admin)",
                    "security": admin,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("BulkFilter")}},
                    },
                    "responses": {
                        "200": _json(_ref("BulkResult"), "Done"),
                        **_errors(413, 415, 422),
                    },
                }
            },
            "/api/v1/jobs/cancel-queued": {
                "post": {
                    "summary": (
                        "Cancel the queued jobs of a queue and/or task, "
                        "and stop the running ones (admin)"
                    ),
                    "security": admin,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("BulkFilter")}},
                    },
                    "responses": {
                        "200": _json(_ref("BulkResult"), "Done"),
                        **_errors(413, 415, 422),
                    },
                }
            },
            "/api/v1/jobs/{id}": {
                "parameters": [_JOB_ID],
                "get": {
                    "summary": "One job with its errors and result",
                    "responses": {"200": _json(_ref("Job"), "The job"), **_errors(404)},
                },
                "delete": {
                    "summary": "Delete a job that is not running (admin)",
                    "security": admin,
                    "responses": {
                        "200": _json(
                            {"type": "object", "properties": {"deleted": {"type": "integer"}}},
                            "Deleted",
                        ),
                        **_errors(404, 409, 413, 415),
                    },
                },
            },
            "/api/v1/jobs/{id}/retry": {
                "parameters": [_JOB_ID],
                "post": {
                    "summary": "Put a failed, cancelled or queued job back in line now (admin)",
                    "security": admin,
                    "responses": {
                        "200": _json(_ref("Job"), "The job"),
                        **_errors(404, 409, 413, 415),
                    },
                },
            },
            "/api/v1/jobs/{id}/cancel": {
                "parameters": [_JOB_ID],
                "post": {
                    "summary": (
                        "Cancel a queued job, or ask the worker of a running one to stop it (admin)"
                    ),
                    "security": admin,
                    "responses": {
                        "200": _json(_ref("Job"), "The job"),
                        **_errors(404, 409, 413, 415),
                    },
                },
            },
            "/api/v1/stats": {
                "get": {
                    "summary": "Queues, workers, the leader, and jobs finished over time",
                    "parameters": [
                        {
                            "name": "range",
                            "in": "query",
                            "schema": {"type": "string", "enum": list(RANGES)},
                        },
                        {"name": "queue", "in": "query", "schema": {"type": "string"}},
                        {"name": "task", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["queues", "workers", "leader", "throughput"],
                                "properties": {
                                    "queues": {"type": "array", "items": _ref("Queue")},
                                    "workers": {"type": "object"},
                                    "leader": _ref("Leader"),
                                    "range": {"type": "string", "enum": list(RANGES)},
                                    "bucket_seconds": {"type": "integer"},
                                    "throughput": {"type": "array", "items": {"type": "object"}},
                                },
                            },
                            "Stats",
                        ),
                        **_errors(),
                    },
                }
            },
            "/api/v1/queues": {
                "get": {
                    "summary": "Every queue with its counts and whether it is paused",
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {"queues": {"type": "array", "items": _ref("Queue")}},
                            },
                            "Queues",
                        ),
                        **_errors(),
                    },
                }
            },
            "/api/v1/queues/{name}/pause": {
                "parameters": [_QUEUE],
                "post": {
                    "summary": "Stop workers claiming from a queue (admin)",
                    "security": admin,
                    "responses": {
                        "200": _json({"type": "object"}, "Paused"),
                        **_errors(404, 413, 415),
                    },
                },
            },
            "/api/v1/queues/{name}/resume": {
                "parameters": [_QUEUE],
                "post": {
                    "summary": "Let workers claim from a queue again (admin)",
                    "security": admin,
                    "responses": {
                        "200": _json({"type": "object"}, "Resumed"),
                        **_errors(404, 413, 415),
                    },
                },
            },
            "/api/v1/queues/{name}": {
                "parameters": [_QUEUE],
                "patch": {
                    "summary": (
                        "Change a queue's concurrency, key_concurrency or rate limits (admin); "
                        "the next claims keep to them"
                    ),
                    "security": admin,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("QueueLimits")}},
                    },
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["name"],
                                "properties": {"name": {"type": "string"}, **_LIMIT_PROPERTIES},
                            },
                            "The queue's limits now",
                        ),
                        **_errors(404, 413, 415, 422),
                    },
                },
            },
            "/api/v1/breakers": {
                "get": {
                    "summary": "Every task's circuit breaker and its state",
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {
                                    "breakers": {"type": "array", "items": _ref("Breaker")}
                                },
                            },
                            "Breakers",
                        ),
                        **_errors(),
                    },
                }
            },
            "/api/v1/workers": {
                "get": {
                    "summary": "Registered workers and the leader",
                    "responses": {"200": _json({"type": "object"}, "Workers"), **_errors()},
                }
            },
            "/api/v1/schedules": {
                "get": {
                    "summary": "Cron schedules (available is false without the cron schema)",
                    "responses": {"200": _json({"type": "object"}, "Schedules"), **_errors()},
                }
            },
            "/api/v1/schedules/{name}/run": {
                "parameters": [
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                    }
                ],
                "post": {
                    "summary": "Enqueue one job of a schedule now (admin)",
                    "security": admin,
                    "responses": {
                        "201": _json({"type": "object"}, "Enqueued"),
                        **_errors(404, 409, 413, 415),
                    },
                },
            },
        },
    }
