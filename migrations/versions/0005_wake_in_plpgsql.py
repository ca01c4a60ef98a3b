"""pgjobs.wake in PL/pgSQL, so its query is planned once per session.

A LANGUAGE sql function that cannot be inlined (this one returns void) has
its body parsed and planned again on every call. Every enqueue calls wake:
that was a quarter of a single enqueue's cost (1,112-1,186 against 1,421-1,576
jobs/s without it, one transaction each, measured from Python). PL/pgSQL
keeps the plan for the session: 1,339-1,349 jobs/s, against 1,548-1,554 for a
bare two-column insert into a table of its own.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_COMMENT = """
COMMENT ON FUNCTION pgjobs.wake(text) IS
    'Notify channel pgjobs with the queue name, only if a worker of that queue awaits work.'
"""


def upgrade() -> None:
    op.execute(
        """
-- Wake idle workers of a queue, but only if one is waiting: a NOTIFY makes
-- the commit take a global lock, which would serialise every enqueuing
-- commit. PostgreSQL folds identical notifications in one transaction.
CREATE OR REPLACE FUNCTION pgjobs.wake(queue text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM pgjobs.workers AS w WHERE w.awaiting_work AND wake.queue = ANY (w.queues)
    ) THEN
        PERFORM pg_notify('pgjobs', wake.queue);
    END IF;
END
$$
"""
    )
    op.execute(_COMMENT)


def downgrade() -> None:
    op.execute(
        """
CREATE OR REPLACE FUNCTION pgjobs.wake(queue text) RETURNS void
LANGUAGE sql AS $$
    SELECT pg_notify('pgjobs', wake.queue)
    WHERE EXISTS (
        SELECT 1 FROM pgjobs.workers w WHERE w.awaiting_work AND wake.queue = ANY (w.queues)
    )
$$
"""
    )
    op.execute(_COMMENT)
