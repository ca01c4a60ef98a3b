"""pgjobs.job_states calls a job that failed and waits out its backoff `retrying`.

The view's CASE tested run_at first, so a job waiting out the backoff after a
failed attempt (queued, attempts > 0, run_at in the future) read as
`scheduled`, and `retrying` only ever showed in the moment between its
backoff ending and a worker claiming it. The states now mean:

- `retrying`: queued after a failed attempt (attempts > 0), whether or not
  its backoff has passed;
- `scheduled`: queued with a future run_at, never failed;
- otherwise the stored status.

The admin listing (pgjobs/sql/admin_list_jobs.sql) reads the state from this
view; the dashboard's pages of one derived state
(pgjobs/web/sql/jobs_list_scheduled.sql, jobs_list_retrying.sql) spell the
same rules out on the stored columns, and follow them from this revision.

CREATE OR REPLACE VIEW keeps the view's owner, grants and comment, and the
views of your own that read it, since its columns stay the same.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_VIEW = """
CREATE OR REPLACE VIEW pgjobs.job_states AS
SELECT j.*,
       CASE
           {first}
           {second}
           ELSE j.status::text
       END AS state
FROM pgjobs.jobs j
"""
_RETRYING = "WHEN j.status = 'queued' AND j.attempts > 0 THEN 'retrying'"
_SCHEDULED = "WHEN j.status = 'queued' AND j.run_at > now() THEN 'scheduled'"


def upgrade() -> None:
    op.execute(_VIEW.format(first=_RETRYING, second=_SCHEDULED))


def downgrade() -> None:
    op.execute(_VIEW.format(first=_SCHEDULED, second=_RETRYING))
