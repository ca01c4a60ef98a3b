"""Rolling upgrades: each revision records the oldest code that works against it.

- `pgjobs.schema_window (revision, oldest_code, applied_at)`: one row per
  revision migrated to, from this one on, written by migrations/env.py from
  the migration's `oldest_code`. A worker or dashboard that finds a revision
  newer than its own code reads this row to learn whether it still fits
  (pgjobs/_window.py), so a migration that only adds (an expand) no longer
  stops the previous release's workers. A migration that would break them
  (a contract) declares itself as `oldest_code`.
- `pgjobs.workers.code_revision` and `pgjobs.workers.version`: the schema
  revision a worker's code was written for, and its pgjobs version, written
  when it registers. `migrate` reads them to refuse a revision outside a
  running worker's window (pgjobs/sql/migrate_workers.sql). Workers of 0014
  leave them NULL.

Expand only: a new table and two nullable columns, no rewrite. Workers of
0014 register as before (their INSERT names its columns), so this revision
declares that code of 0014 still works against it. Those workers check for
their own revision only, though: one already running keeps running, one
started after this migration refuses it. From 0015 on, workers start on any
revision inside their window.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from alembic import op

# The revision, in one place (renumbering this migration changes these two),
# and the oldest code revision that works against the schema it leaves: the
# revision before, as this is an expand.
revision = "0015"
down_revision = "0014"
oldest_code = down_revision
branch_labels = None
depends_on = None

_UPGRADE = """
CREATE TABLE pgjobs.schema_window (
    revision    text        PRIMARY KEY,
    oldest_code text        NOT NULL CHECK (oldest_code <= revision),
    applied_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE pgjobs.schema_window IS
    'For each revision migrated to (from 0015), the oldest pgjobs code revision that still works against it.';

ALTER TABLE pgjobs.workers
    ADD COLUMN code_revision text,
    ADD COLUMN version text;
COMMENT ON COLUMN pgjobs.workers.code_revision IS
    'The schema revision the worker''s code was written for; NULL: a worker of 0014 or earlier.';
COMMENT ON COLUMN pgjobs.workers.version IS 'The worker''s pgjobs package version.';
"""


def upgrade() -> None:
    op.execute(_UPGRADE)


def downgrade() -> None:
    op.execute("ALTER TABLE pgjobs.workers DROP COLUMN code_revision, DROP COLUMN version")
    op.execute("DROP TABLE pgjobs.schema_window")
