"""Helpers for your tests: run the jobs your code enqueued, in-process, until none are due."""

from __future__ import annotations

from pgjobs.testing._drain import drain, drain_async

__all__ = ["drain", "drain_async"]
