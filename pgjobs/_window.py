"""The compatible window: which schema revisions a code revision runs against, and the reverse.

Every migration from 0015 on declares `oldest_code`, the oldest code
revision that still works against the schema it leaves: an expand-only
migration (new tables, nullable columns, new functions) names the revision
before it, a contract migration (a column dropped or retyped, a statement
older code runs changed) names itself. Migrating records the declaration in
`pgjobs.schema_window`, so that code which does not know a newer revision
can still read whether it fits. In the other direction, the code declares
the oldest schema its statements run against (`pgjobs._migrate.OLDEST_SCHEMA`).

Revisions are four-digit strings, so they compare as strings. This module
does no I/O: `pgjobs._migrate` reads the database and calls it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

#: The first revision that records its window (the migration that made
#: pgjobs.schema_window). Code before it records no revision in
#: pgjobs.workers, and checks for its own revision only.
FIRST_WINDOW = "0015"

#: The newest code revision that registered workers without their revision.
LAST_UNRECORDED = f"{int(FIRST_WINDOW) - 1:04d}"

_RUN_MIGRATE = "Run `python -m pgjobs migrate` (or `pgjobs migrate --sql` to review the DDL first)."


@dataclasses.dataclass(frozen=True)
class Schema:
    """A database's schema revision, and the oldest code revision it declares it works with.

    `oldest_code` is None for a revision before 0015, which declares nothing:
    only code of that very revision is known to work against it.
    """

    revision: str
    oldest_code: str | None = None

    @property
    def oldest(self) -> str:
        """The oldest code revision that works against this schema."""
        return self.oldest_code if self.oldest_code is not None else self.revision


@dataclasses.dataclass(frozen=True)
class Code:
    """A code revision's own window: the schema it was written for, and the oldest it runs on."""

    revision: str
    oldest_schema: str

    def describe(self) -> str:
        """`0015`, or `0016 (which runs on 0015 to 0016)` when the window is wider."""
        if self.oldest_schema == self.revision:
            return self.revision
        return f"{self.revision} (which runs on schemas {self.oldest_schema} to {self.revision})"


def problem(code: Code, found: Schema | None) -> str | None:
    """What keeps `code` from running against `found`, with the fix; None when it fits.

    A schema newer than the code fits when the schema declares that it still
    works with code this old; an older schema fits when the code declares
    that it still runs on a schema this old.
    """
    if found is None:
        return f"the database has no pgjobs schema. {_RUN_MIGRATE}"
    if found.revision == code.revision:
        return None
    if found.revision < code.revision:
        if found.revision >= code.oldest_schema:
            return None
        return (
            f"the pgjobs schema is at revision {found.revision}, but this code (revision "
            f"{code.revision}) needs revision {code.oldest_schema} or newer. {_RUN_MIGRATE}"
        )
    if found.oldest <= code.revision:
        return None
    return (
        f"the pgjobs schema is at revision {found.revision}, which works with code of revision "
        f"{found.oldest} or newer; this code is revision {code.revision}: the database was "
        "migrated by a newer pgjobs. Upgrade the pgjobs package on this host."
    )


@dataclasses.dataclass(frozen=True)
class RunningWorker:
    """A live row of pgjobs.workers, as `migrate` reads it before changing the schema.

    `code_revision` and `version` are None for a worker of code before 0015,
    which did not record them.
    """

    id: int
    host: str
    pid: int
    code_revision: str | None
    version: str | None

    def assumed_revision(self, current: str) -> str:
        """Its code revision; for a worker that recorded none, the one it must have started on.

        Code before 0015 started only against its own revision, so a worker
        of it runs the database's revision, or 0014 at most.
        """
        if self.code_revision is not None:
            return self.code_revision
        return min(current, LAST_UNRECORDED)

    def describe(self, current: str) -> str:
        """`worker 3 (host, pid 812): pgjobs 0.2.0, code revision 0015`."""
        where = f"worker {self.id} ({self.host}, pid {self.pid})"
        if self.code_revision is None:
            return (
                f"{where}: code revision {self.assumed_revision(current)} assumed "
                "(started by a pgjobs that does not record its revision)"
            )
        version = f"pgjobs {self.version}, " if self.version else ""
        return f"{where}: {version}code revision {self.code_revision}"


def outside(workers: Iterable[RunningWorker], current: str, target: Schema) -> list[RunningWorker]:
    """The workers whose code would not work against the schema at `target`.

    Args:
        workers: the live workers.
        current: the database's revision now.
        target: the revision to migrate to, with the oldest code it declares.
    """
    return [w for w in workers if w.assumed_revision(current) < target.oldest]


def refusal(
    workers: list[RunningWorker], current: str, target: Schema, *, forced: bool = False
) -> str:
    """The message of a `migrate` that would leave these workers outside their window.

    Args:
        workers: the workers left out.
        current: the database's revision now.
        target: the revision to migrate to.
        forced: the message is a warning that `--force` migrates anyway.
    """
    lines = "; ".join(w.describe(current) for w in workers)
    said = (
        f"migrating from {current} to {target.revision} would break {len(workers)} running "
        f"worker(s): revision {target.revision} works with code of revision {target.oldest} "
        f"or newer, and these run older code: {lines}."
    )
    if forced:
        return (
            f"{said} Migrating anyway (--force): they fail until they are replaced with "
            f"workers of code {target.oldest} or newer."
        )
    return (
        f"{said} Stop them (or replace them with workers of code {target.oldest} or newer) "
        "and migrate again, or pass --force to migrate anyway: they will fail until they "
        "are replaced."
    )
