"""A statement on the view pgjobs.jobs counts its finished jobs once, not once per row.

The view's INSTEAD OF trigger (migration 0009) writes a row at a time, so a
statement that finishes many jobs through it (`UPDATE pgjobs.jobs SET status
= 'cancelled' WHERE ...`, an INSERT of finished jobs) ran the history's
counting trigger (migration 0019) once per row, each time upserting the same
rows of `pgjobs.finished_per_minute` and `_per_hour` in one transaction.
Every such update leaves a row version that the next must step over, so
the cost grew with the square of the rows: cancelling 10,000 queued jobs
took 5.9 s (1.8 s with the counting off), and an INSERT of 60,000 finished
jobs 113 s.

Now, while a statement on the view runs:

- its BEFORE statement trigger turns the history's counting off (keeping
  the `pgjobs.finished_counts` it found) and counts its nesting in
  `pgjobs.jobs_view_depth`;
- a second statement trigger on `pgjobs.job_history`, which fires only
  while that depth is above zero, appends the finished rows to
  `pgjobs.finished_uncounted` (unlogged, and empty between statements);
- its AFTER statement trigger puts `pgjobs.finished_counts` back and
  deletes those rows, if the statement finished any, in one statement,
  whose own trigger counts them with `pgjobs.count_finished()`, as a
  completion batch is counted: one upsert per minute, queue, task and
  status. A statement that finishes nothing (an INSERT of a queued job)
  pays two calls that set settings.

The worker's completions never use the view: for them the only change is a
statement trigger on the history whose WHEN condition is false, so its
function is never called. Settings are transaction-local and roll back with
a failed statement, as the appended rows do. A migration that recreates
the view must create its triggers again: these two as well as jobs_write.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from alembic import op

# The revision, in one place (renumbering this migration changes these two).
revision = "0020"
down_revision = "0019"
# An expand: code of 0019 never writes through the view, and the counts it
# reads are the same.
oldest_code = down_revision
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE UNLOGGED TABLE pgjobs.finished_uncounted (
    finished_at timestamptz NOT NULL,
    queue text NOT NULL,
    task text NOT NULL,
    status pgjobs.job_status NOT NULL
);

COMMENT ON TABLE pgjobs.finished_uncounted IS
    'Jobs finished by the running statement on the view pgjobs.jobs, counted once at its end; empty between statements.';

CREATE FUNCTION pgjobs.jobs_view_statement() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    depth integer := coalesce(nullif(current_setting('pgjobs.jobs_view_depth', true), ''), '0');
BEGIN
    IF TG_WHEN = 'BEFORE' THEN
        IF depth = 0 THEN
            PERFORM set_config('pgjobs.jobs_view_counts',
                               coalesce(current_setting('pgjobs.finished_counts', true), ''), true);
            PERFORM set_config('pgjobs.finished_counts', 'off', true);
        END IF;
        PERFORM set_config('pgjobs.jobs_view_depth', (depth + 1)::text, true);
        RETURN NULL;
    END IF;
    PERFORM set_config('pgjobs.jobs_view_depth', (depth - 1)::text, true);
    IF depth = 1 THEN
        PERFORM set_config('pgjobs.finished_counts',
                           current_setting('pgjobs.jobs_view_counts', true), true);
        IF current_setting('pgjobs.jobs_view_uncounted', true) = 'yes' THEN
            PERFORM set_config('pgjobs.jobs_view_uncounted', 'no', true);
            -- The trigger on this DELETE counts what it takes.
            DELETE FROM pgjobs.finished_uncounted;
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_statement_began
    BEFORE INSERT OR UPDATE ON pgjobs.jobs
    FOR EACH STATEMENT EXECUTE FUNCTION pgjobs.jobs_view_statement();
CREATE TRIGGER jobs_statement_ended
    AFTER INSERT OR UPDATE ON pgjobs.jobs
    FOR EACH STATEMENT EXECUTE FUNCTION pgjobs.jobs_view_statement();

CREATE FUNCTION pgjobs.finished_through_the_view() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pgjobs.finished_uncounted (finished_at, queue, task, status)
    SELECT finished_at, queue, task, status FROM finished;
    PERFORM set_config('pgjobs.jobs_view_uncounted', 'yes', true);
    RETURN NULL;
END
$$;

CREATE TRIGGER finished_through_the_view
    AFTER INSERT ON pgjobs.job_history
    REFERENCING NEW TABLE AS finished
    FOR EACH STATEMENT
    WHEN (current_setting('pgjobs.jobs_view_depth', true) > '0')
    EXECUTE FUNCTION pgjobs.finished_through_the_view();

CREATE TRIGGER count_finished
    AFTER DELETE ON pgjobs.finished_uncounted
    REFERENCING OLD TABLE AS finished
    FOR EACH STATEMENT EXECUTE FUNCTION pgjobs.count_finished();
"""

DOWNGRADE = r"""
DROP TRIGGER finished_through_the_view ON pgjobs.job_history;
DROP FUNCTION pgjobs.finished_through_the_view();
DROP TRIGGER jobs_statement_ended ON pgjobs.jobs;
DROP TRIGGER jobs_statement_began ON pgjobs.jobs;
DROP FUNCTION pgjobs.jobs_view_statement();
DROP TABLE pgjobs.finished_uncounted;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
