"""Cron schedules: one row per schedule, holding the exactly-once watermark.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = r"""
-- One row per cron schedule declared in code. Workers upsert the rows of
-- their App when they start; a schedule no longer in the code is marked
-- inactive (active = false, removed_at set) and kept for history.
--
-- last_fired_at is the exactly-once watermark: the last tick fired. The
-- leader claims a tick with a compare-and-set on it, in the same transaction
-- that inserts the tick's job (README, How it works: Cron, exactly once).
CREATE TABLE pgjobs.schedules (
    name            text        PRIMARY KEY,
    expression      text        NOT NULL,
    timezone        text        NOT NULL DEFAULT 'UTC',
    task            text        NOT NULL,
    args            jsonb       NOT NULL DEFAULT '{}'::jsonb,
    queue           text        NOT NULL DEFAULT 'default',
    priority        smallint    NOT NULL DEFAULT 2,
    max_attempts    integer     NOT NULL DEFAULT 3,
    -- How far back ticks missed while no worker ran are still fired.
    backfill        interval    NOT NULL DEFAULT '0 seconds',
    skip_if_running boolean     NOT NULL DEFAULT false,
    last_fired_at   timestamptz,
    next_fire_at    timestamptz,
    active          boolean     NOT NULL DEFAULT true,
    -- Ticks before this instant never fire: a new or re-added schedule does
    -- not backfill the time it did not exist.
    active_since    timestamptz NOT NULL DEFAULT now(),
    removed_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT schedules_name_valid     CHECK (name <> '' AND length(name) <= 200),
    CONSTRAINT schedules_task_valid     CHECK (task <> '' AND length(task) <= 255),
    CONSTRAINT schedules_queue_valid    CHECK (queue <> '' AND length(queue) <= 128),
    CONSTRAINT schedules_priority_valid CHECK (priority BETWEEN 0 AND 4),
    CONSTRAINT schedules_backfill_valid CHECK (backfill >= interval '0 seconds'),
    CONSTRAINT schedules_args_object    CHECK (jsonb_typeof(args) = 'object'),
    CONSTRAINT schedules_removed_valid  CHECK (active = (removed_at IS NULL))
);
"""

DOWNGRADE = r"""
DROP TABLE IF EXISTS pgjobs.schedules;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
