"""Rate limits per queue: N jobs per second, minute or hour, across every worker.

- `pgjobs.queues` gets `rate_limit` (text such as '100/m', NULL for none),
  `rate_burst` (integer, NULL for the default) and `rate_full_at`
  (timestamptz, the bucket's state). CHECK constraints refuse a rate that
  is not `N/s`, `N/m` or `N/h` with N a positive whole number, and a burst
  below 1. `app.queue(..., rate_limit=...)` writes them when a worker
  starts; an UPDATE changes them live.
- `pgjobs.claim_within_limits(queue, max_jobs)`: what 0012's
  `pgjobs.claim_limited()` did, with the rate kept too, and it also says,
  when the rate held the claim back, in how many seconds the next job may
  start (`rate_wait`), so that a worker comes back then. 0012's
  `pgjobs.claim_limited()` stays, as a wrapper returning its ids, for
  workers of 0012 still running during an upgrade.

The rate is a GCRA (a token bucket kept as one timestamp): tokens come at
one per `step` seconds (the unit over N) into a bucket of `burst` tokens,
and `rate_full_at` is when the bucket is full again; each job started takes
a token. A claim reads and moves it under the queue row's lock, which every
claim of a limited queue takes already, in the claim's transaction. It is
not a count of recent jobs: its cost does not grow with the rate.

No column is added to the jobs tables.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

import importlib.util
from pathlib import Path
from typing import Any

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

#: What a rate looks like; pgjobs/_queue.py checks the same before writing one.
RATE_PATTERN = "^[1-9][0-9]{0,8}/[smh]$"

_COLUMNS = f"""
ALTER TABLE pgjobs.queues
    ADD COLUMN rate_limit text
        CONSTRAINT queues_rate_limit_valid CHECK (rate_limit ~ '{RATE_PATTERN}'),
    ADD COLUMN rate_burst integer CONSTRAINT queues_rate_burst_positive CHECK (rate_burst > 0),
    ADD COLUMN rate_full_at timestamptz;

COMMENT ON COLUMN pgjobs.queues.rate_limit IS
    'At most N jobs of the queue start per second, minute or hour (''N/s'', ''N/m'', ''N/h''), '
    'across every worker; NULL: no limit.';
COMMENT ON COLUMN pgjobs.queues.rate_burst IS
    'How many jobs of a rate-limited queue may start at once after a quiet spell; NULL: a tenth '
    'of a second''s worth of the rate, at least 1.';
COMMENT ON COLUMN pgjobs.queues.rate_full_at IS
    'The rate limit''s state, moved by each claim: when the queue''s bucket of tokens is full '
    'again (NULL or past: full).';
"""

# 0012's claim_limited(), with the rate added, as a function of OUT
# parameters so that it can also say when the next token is due. Each
# statement after the queue row's lock reads a new snapshot (see 0012).
#
# The rate: `step` seconds between tokens, `slack` = (burst - 1) * step, how
# far ahead of the steady pace claims may run. `base` is when the bucket is
# full again, or now if it already is; a claim may take
# floor((slack - (base - now)) / step) + 1 tokens, and moves the state to
# base + taken * step. A state further ahead than one claim can leave it
# (base - now > slack + step, from a slower rate set before) counts as an
# empty bucket, so a rate raised from SQL holds at the next claim. The time
# is now(), the claim's transaction start, which is also the jobs'
# started_at: the limit holds on the times the jobs table records.
#
# The jobs are chosen as in 0012 but one more than the tokens allow is
# asked for, when the tokens are what binds: if it is there, the rate held
# the claim back, and `rate_wait` says in how many seconds the next token
# comes. Otherwise (no more jobs, or the concurrency limits bound) it is
# NULL and the worker waits as for any queue. A token is taken for each
# chosen job, even one that a claim of another kind took meanwhile
# (claim_limited.sql skips it): the rate errs on the slow side.
_CLAIM_WITHIN_LIMITS = """
CREATE FUNCTION pgjobs.claim_within_limits(
    queue_name text, max_jobs integer, OUT ids bigint[], OUT rate_wait double precision
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    cap integer;
    key_cap integer;
    rate text;
    burst integer;
    full_at timestamptz;
    free integer;
    wanted integer;
    per integer;
    unit_seconds integer;
    step double precision;
    slack double precision;
    base timestamptz;
    tokens integer;
    refilled timestamptz;
BEGIN
    ids := '{}';
    SELECT q.concurrency, q.key_concurrency, q.rate_limit, q.rate_burst, q.rate_full_at
      INTO cap, key_cap, rate, burst, full_at
      FROM pgjobs.queues AS q
     WHERE q.name = queue_name AND NOT q.paused
       FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    free := max_jobs;
    IF cap IS NOT NULL THEN
        SELECT least(max_jobs, cap - count(*)) INTO free
          FROM pgjobs.jobs_live AS j
         WHERE j.status = 'running' AND j.queue = queue_name;
    END IF;
    IF free <= 0 THEN
        RETURN;
    END IF;
    wanted := free;
    IF rate IS NOT NULL THEN
        per := split_part(rate, '/', 1)::integer;
        unit_seconds := CASE split_part(rate, '/', 2) WHEN 's' THEN 1 WHEN 'm' THEN 60 ELSE 3600 END;
        burst := coalesce(burst, greatest(1, per / (10 * unit_seconds)));
        step := unit_seconds::double precision / per;
        slack := (burst - 1) * step;
        base := least(greatest(coalesce(full_at, now()), now()),
                      now() + make_interval(secs => slack + step));
        tokens := floor((slack - extract(epoch FROM base - now())::double precision) / step + 1e-9)
                  ::integer + 1;
        IF tokens < free THEN
            wanted := tokens + 1;
        END IF;
    END IF;
    IF key_cap IS NULL THEN
        ids := ARRAY(
            SELECT j.id
              FROM pgjobs.jobs_live AS j
             WHERE j.status = 'queued'
               AND hashtext(j.queue) = hashtext(queue_name)
               AND j.queue = queue_name
               AND j.run_at <= now()
             ORDER BY j.priority, j.run_at, j.id
             LIMIT wanted);
    ELSE
        ids := ARRAY(
            WITH busy AS (
                SELECT j.key, count(*) AS n
                  FROM pgjobs.jobs_live AS j
                 WHERE j.status = 'running' AND j.queue = queue_name AND j.key IS NOT NULL
                 GROUP BY j.key
            ), ranked AS (
                SELECT j.id, j.priority, j.run_at, j.key,
                       coalesce(b.n, 0)
                       + row_number() OVER (PARTITION BY j.key ORDER BY j.priority, j.run_at, j.id)
                           AS place
                  FROM pgjobs.jobs_live AS j
                  LEFT JOIN busy AS b ON b.key = j.key
                 WHERE j.status = 'queued'
                   AND hashtext(j.queue) = hashtext(queue_name)
                   AND j.queue = queue_name
                   AND j.run_at <= now()
                   AND (j.key IS NULL OR coalesce(b.n, 0) < key_cap)
            )
            SELECT r.id
              FROM ranked AS r
             WHERE r.key IS NULL OR r.place <= key_cap
             ORDER BY r.priority, CASE WHEN r.key IS NULL THEN 1 ELSE r.place END, r.run_at, r.id
             LIMIT wanted);
    END IF;
    IF rate IS NULL THEN
        RETURN;
    END IF;
    IF cardinality(ids) > tokens THEN
        ids := ids[1:greatest(tokens, 0)];
        refilled := base + make_interval(secs => greatest(tokens, 0) * step);
        rate_wait := greatest(0, extract(epoch FROM refilled - now())::double precision - slack);
    ELSE
        refilled := base + make_interval(secs => cardinality(ids) * step);
    END IF;
    IF cardinality(ids) > 0 THEN
        UPDATE pgjobs.queues SET rate_full_at = refilled WHERE name = queue_name;
    END IF;
END
$$;

COMMENT ON FUNCTION pgjobs.claim_within_limits(text, integer) IS
    'The ids of up to max_jobs queued jobs of a queue with a concurrency, key_concurrency or '
    'rate limit that may start now within them (the caller makes them running in the same '
    'transaction), and, when the rate held the claim back, the seconds until the next token.';

CREATE OR REPLACE FUNCTION pgjobs.claim_limited(queue_name text, max_jobs integer)
RETURNS bigint[] LANGUAGE sql VOLATILE AS $$
    SELECT c.ids FROM pgjobs.claim_within_limits(queue_name, max_jobs) AS c
$$;

COMMENT ON FUNCTION pgjobs.claim_limited(text, integer) IS
    'pgjobs.claim_within_limits(queue_name, max_jobs).ids, for workers of revision 0012.';
"""


def _load(name: str) -> Any:
    # Alembic loads revision files by path, so they are not importable as a package.
    path = Path(__file__).with_name(name)
    spec = importlib.util.spec_from_file_location(f"pgjobs_migration_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.execute(_COLUMNS)
    op.execute(_CLAIM_WITHIN_LIMITS)


def downgrade() -> None:
    m0012 = _load("0012_flow_control.py")
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.execute(
        m0012._CLAIM_LIMITED.replace(
            "CREATE FUNCTION pgjobs.claim_limited",
            "CREATE OR REPLACE FUNCTION pgjobs.claim_limited",
        )
    )
    op.execute("DROP FUNCTION pgjobs.claim_within_limits(text, integer)")
    op.execute(
        "ALTER TABLE pgjobs.queues DROP COLUMN rate_limit, DROP COLUMN rate_burst,"
        " DROP COLUMN rate_full_at"
    )
