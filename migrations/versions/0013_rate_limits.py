"""Rate limits per queue and per key: N jobs per second, minute or hour, across every worker.

- `pgjobs.queues` gets `rate_limit` (text such as '100/m', NULL for none),
  `rate_burst` (integer, NULL for the default) and `rate_full_at`
  (timestamptz, the bucket's state). CHECK constraints refuse a rate that
  is not `N/s`, `N/m` or `N/h` with N a positive whole number, and a burst
  below 1. `app.queue(..., rate_limit=...)` writes them when a worker
  starts; an UPDATE changes them live.
- Per key: `key_rate_limit` and `key_rate_burst` on `pgjobs.queues`, with
  the same checks, and the table `pgjobs.queue_key_rates` (queue, key,
  full_at): each key's bucket, a row only while it is not full.
- Small functions for the claim, `pgjobs.rate_*()`: a rate's step and
  default burst, and a bucket's tokens.
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
    ADD COLUMN rate_full_at timestamptz,
    ADD COLUMN key_rate_limit text
        CONSTRAINT queues_key_rate_limit_valid CHECK (key_rate_limit ~ '{RATE_PATTERN}'),
    ADD COLUMN key_rate_burst integer
        CONSTRAINT queues_key_rate_burst_positive CHECK (key_rate_burst > 0);

COMMENT ON COLUMN pgjobs.queues.rate_limit IS
    'At most N jobs of the queue start per second, minute or hour (''N/s'', ''N/m'', ''N/h''), '
    'across every worker; NULL: no limit.';
COMMENT ON COLUMN pgjobs.queues.rate_burst IS
    'How many jobs of a rate-limited queue may start at once after a quiet spell; NULL: a tenth '
    'of a second''s worth of the rate, at least 1.';
COMMENT ON COLUMN pgjobs.queues.rate_full_at IS
    'The rate limit''s state, moved by each claim: when the queue''s bucket of tokens is full '
    'again (NULL or past: full).';
COMMENT ON COLUMN pgjobs.queues.key_rate_limit IS
    'rate_limit for each key (jobs.key) of the queue on its own; NULL: no limit.';
COMMENT ON COLUMN pgjobs.queues.key_rate_burst IS
    'rate_burst of each key''s rate; NULL: the default, as for rate_burst.';

CREATE TABLE pgjobs.queue_key_rates (
    queue text NOT NULL,
    key pgjobs.job_key NOT NULL,
    full_at timestamptz NOT NULL,
    PRIMARY KEY (queue, key)
);

COMMENT ON TABLE pgjobs.queue_key_rates IS
    'The state of key_rate_limit: per queue and key, when its bucket is full again. A key '
    'without a row, or whose full_at has passed, has a full bucket; claims delete such rows.';
"""

# A rate's parts, for the claim below: the seconds between two tokens, the
# default burst (a tenth of a second's worth, pgjobs/_queue.py says the
# same), and, from a bucket's state, when it counts from (`base`: when it is
# full again, or now if it already is) and how many tokens it holds. A state
# further ahead than one claim can leave it (base - now > slack + step, from
# a slower rate set before) counts as an empty bucket, so a rate raised from
# SQL holds at the next claim. `slack` = (burst - 1) * step is how far ahead
# of the steady pace claims may run.
_RATE_FUNCTIONS = """
CREATE FUNCTION pgjobs.rate_unit_seconds(rate text) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT CASE split_part(rate, '/', 2) WHEN 's' THEN 1 WHEN 'm' THEN 60 ELSE 3600 END
$$;

CREATE FUNCTION pgjobs.rate_step(rate text) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT pgjobs.rate_unit_seconds(rate) / split_part(rate, '/', 1)::double precision
$$;

CREATE FUNCTION pgjobs.rate_default_burst(rate text) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT greatest(1, split_part(rate, '/', 1)::integer / (10 * pgjobs.rate_unit_seconds(rate)))
$$;

CREATE FUNCTION pgjobs.rate_base(
    full_at timestamptz, step double precision, slack double precision
) RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT least(greatest(coalesce(full_at, now()), now()),
                 now() + make_interval(secs => slack + step))
$$;

CREATE FUNCTION pgjobs.rate_tokens(
    base timestamptz, step double precision, slack double precision
) RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT floor((slack - extract(epoch FROM base - now())::double precision) / step + 1e-9)
           ::integer + 1
$$;
"""

# 0012's claim_limited(), with the rates added, as a function of OUT
# parameters so that it can also say when the next token is due. Each
# statement after the queue row's lock reads a new snapshot (see 0012).
#
# The queue's rate: a claim may take pgjobs.rate_tokens() tokens, and moves
# the state to base + taken * step. The time is now(), the claim's
# transaction start, which is also the jobs' started_at: the limit holds on
# the times the jobs table records. The jobs are chosen as in 0012 but one
# more than the tokens allow is asked for, when the tokens are what binds:
# if it is there, the rate held the claim back, and `rate_wait` says in how
# many seconds the next token comes. Otherwise (no more jobs, or the
# concurrency limits bound) it is NULL and the worker waits as for any
# queue. A token is taken for each chosen job, even one that a claim of
# another kind took meanwhile (claim_limited.sql skips it): the rate errs on
# the slow side.
#
# Each key's rate works alike, with its state in pgjobs.queue_key_rates,
# read for the keys of the queued jobs as they are numbered per key (a
# key's nth job may start if it has n tokens), and written for the keys of
# the jobs taken. When the claim took every job the limits allowed and a
# key's rate held one back, `rate_wait` says when the first such key has a
# token again (unless the queue's own rate bound, whose wait then counts).
# Under a key rate, as under key_concurrency, keys take turns within a
# priority. Rows of full buckets are deleted by the claims.
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
    key_rate text;
    key_burst integer;
    free integer;
    wanted integer;
    step double precision;
    slack double precision;
    base timestamptz;
    tokens integer;
    key_step double precision;
    key_slack double precision;
    key_wait double precision;
BEGIN
    ids := '{}';
    SELECT q.concurrency, q.key_concurrency, q.rate_limit, q.rate_burst, q.rate_full_at,
           q.key_rate_limit, q.key_rate_burst
      INTO cap, key_cap, rate, burst, full_at, key_rate, key_burst
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
        step := pgjobs.rate_step(rate);
        slack := (coalesce(burst, pgjobs.rate_default_burst(rate)) - 1) * step;
        base := pgjobs.rate_base(full_at, step, slack);
        tokens := pgjobs.rate_tokens(base, step, slack);
        IF tokens < free THEN
            wanted := tokens + 1;
        END IF;
    END IF;
    IF key_rate IS NOT NULL THEN
        key_step := pgjobs.rate_step(key_rate);
        key_slack := (coalesce(key_burst, pgjobs.rate_default_burst(key_rate)) - 1) * key_step;
    END IF;
    IF key_cap IS NULL AND key_rate IS NULL THEN
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
        WITH busy AS (
            SELECT j.key, count(*) AS n
              FROM pgjobs.jobs_live AS j
             WHERE key_cap IS NOT NULL
               AND j.status = 'running' AND j.queue = queue_name AND j.key IS NOT NULL
             GROUP BY j.key
        ), keyed AS (
            SELECT j.id, j.priority, j.run_at, j.key, coalesce(b.n, 0) AS running,
                   row_number() OVER (PARTITION BY j.key ORDER BY j.priority, j.run_at, j.id)
                       AS nth,
                   pgjobs.rate_base(k.full_at, key_step, key_slack) AS key_base
              FROM pgjobs.jobs_live AS j
              LEFT JOIN busy AS b ON b.key = j.key
              LEFT JOIN pgjobs.queue_key_rates AS k
                ON key_rate IS NOT NULL AND k.queue = queue_name AND k.key = j.key
             WHERE j.status = 'queued'
               AND hashtext(j.queue) = hashtext(queue_name)
               AND j.queue = queue_name
               AND j.run_at <= now()
               AND (j.key IS NULL OR key_cap IS NULL OR coalesce(b.n, 0) < key_cap)
        ), ranked AS (
            SELECT c.*, c.running + c.nth AS place,
                   pgjobs.rate_tokens(c.key_base, key_step, key_slack) AS key_tokens
              FROM keyed AS c
        ), allowed AS (
            SELECT r.id,
                   row_number() OVER (
                       ORDER BY r.priority, CASE WHEN r.key IS NULL THEN 1 ELSE r.place END,
                                r.run_at, r.id
                   ) AS turn
              FROM ranked AS r
             WHERE r.key IS NULL
                OR ((key_cap IS NULL OR r.place <= key_cap)
                    AND (key_rate IS NULL OR r.nth <= r.key_tokens))
        )
        SELECT ARRAY(SELECT a.id FROM allowed AS a WHERE a.turn <= wanted ORDER BY a.turn),
               (SELECT min(extract(epoch FROM r.key_base - now())::double precision
                           + r.key_tokens * key_step - key_slack)
                  FROM ranked AS r
                 WHERE key_rate IS NOT NULL AND r.key IS NOT NULL
                   AND r.nth = r.key_tokens + 1
                   AND (key_cap IS NULL OR r.place <= key_cap))
          INTO ids, key_wait;
    END IF;
    IF rate IS NOT NULL AND cardinality(ids) > tokens THEN
        ids := ids[1:greatest(tokens, 0)];
        rate_wait := greatest(
            0, extract(epoch FROM base - now())::double precision + tokens * step - slack);
    ELSIF key_wait IS NOT NULL AND cardinality(ids) < wanted THEN
        rate_wait := greatest(0, key_wait);
    END IF;
    IF rate IS NOT NULL AND cardinality(ids) > 0 THEN
        UPDATE pgjobs.queues
           SET rate_full_at = base + make_interval(secs => cardinality(ids) * step)
         WHERE name = queue_name;
    END IF;
    IF key_rate IS NOT NULL THEN
        DELETE FROM pgjobs.queue_key_rates AS k WHERE k.queue = queue_name AND k.full_at <= now();
        INSERT INTO pgjobs.queue_key_rates AS k (queue, key, full_at)
        SELECT queue_name, c.key, now() + make_interval(secs => c.n * key_step)
          FROM (SELECT j.key, count(*) AS n
                  FROM pgjobs.jobs_live AS j
                 WHERE j.id = ANY (ids) AND j.key IS NOT NULL
                 GROUP BY j.key) AS c
        ON CONFLICT (queue, key) DO UPDATE
            SET full_at = pgjobs.rate_base(k.full_at, key_step, key_slack)
                          + (excluded.full_at - now());
    END IF;
END
$$;

COMMENT ON FUNCTION pgjobs.claim_within_limits(text, integer) IS
    'The ids of up to max_jobs queued jobs of a queue with a concurrency, key_concurrency or '
    'rate limit that may start now within them (the caller makes them running in the same '
    'transaction), and, when a rate held the claim back, the seconds until its next token.';

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
    op.execute(_RATE_FUNCTIONS)
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
        "DROP FUNCTION pgjobs.rate_tokens(timestamptz, double precision, double precision),"
        " pgjobs.rate_base(timestamptz, double precision, double precision),"
        " pgjobs.rate_default_burst(text), pgjobs.rate_step(text),"
        " pgjobs.rate_unit_seconds(text)"
    )
    op.execute("DROP TABLE pgjobs.queue_key_rates")
    op.execute(
        "ALTER TABLE pgjobs.queues DROP COLUMN rate_limit, DROP COLUMN rate_burst,"
        " DROP COLUMN rate_full_at, DROP COLUMN key_rate_limit, DROP COLUMN key_rate_burst"
    )
