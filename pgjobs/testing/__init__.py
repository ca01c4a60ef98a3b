"""Helpers for your tests: run the jobs your code enqueued, and check what it enqueued.

The pytest plugin (pgjobs.testing._plugin, loaded by pytest through its
`pytest11` entry point) turns these into fixtures on a database of its own;
this package itself needs no pytest.
"""

from __future__ import annotations

from pgjobs.testing._database import use_database
from pgjobs.testing._drain import drain, drain_async
from pgjobs.testing._enqueued import assert_enqueued
from pgjobs.testing._memory import in_memory

__all__ = ["assert_enqueued", "drain", "drain_async", "in_memory", "use_database"]
