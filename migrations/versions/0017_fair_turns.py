"""Fair sharing between keys: within a priority, a queue's keys take turns.

- The index `jobs_live_key_fetch_idx` on (hashtext(queue), priority,
  hashtext(key), run_at, id) INCLUDE (queue, key), WHERE status = 'queued'
  AND key IS NOT NULL: the queued jobs that have a key, grouped by key
  within each priority, oldest first in a key. Jobs without a key are not in
  it, so a queue whose jobs carry no key pays nothing for it: no entry to
  write at enqueue, no change to its claims. Every key is fixed-width, as in
  the fetch index (0006): `key` itself is only carried, for the checks.
- `pgjobs.claim_turns(queue, max_jobs, after_turn, key_cap, claimer, ended)`: the ids of up
  to max_jobs due jobs of the queue, one per key in turn (the keys in the
  order of their hash, starting after `after_turn`, the hash of the last key
  served, and round again), locked FOR NO KEY UPDATE SKIP LOCKED, and the
  turn to start after next time. Each key costs two probes of the index, so
  a claim reads about two entries per job however many jobs are queued.
- `pgjobs.claim_keyed(queue, max_jobs, after_turn)`: claim_turns for a
  queue with no limit (nothing when the queue is paused or has a limit:
  claim_within_limits claims those).
- `pgjobs.claim_within_limits(queue, max_jobs, after_turn, claimer, ended)`:
  0013's claim of a limited queue, where a queue with keyed jobs and no key
  rate takes its jobs by claim_turns (key_concurrency included) instead of
  numbering every queued job per key; and where the jobs in `ended` that
  the claiming worker (`claimer`) runs, those it has finished but whose
  outcomes it has not written yet, do not count against the limits. Counted, they kept a
  queue limited to about a worker's concurrency from using the slots they
  freed until the outcomes were written (a drain at 0.3x of the same queue
  without a limit). 0013's two-argument function stays, for workers of 0013
  still running during an upgrade.

Two keys with the same 32-bit hash share one turn (and a turn is never a
wrong job: every probe compares the key). Jobs without a key in a queue
with keyed jobs take one turn together, at the end of each round: the
oldest due one among the first 64 due jobs of the priority (they are not
in the keyed index, and finding them further back would read every keyed
job before them).

No column and no table is added.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

import importlib.util
from pathlib import Path
from typing import Any

from alembic import op

# The revision, in one place (renumbering this migration changes these two).
revision = "0017"
down_revision = "0016"
# An expand: code of 0016 still claims as it did (its functions stay; it
# never reads the new index or calls the new ones).
oldest_code = down_revision
branch_labels = None
depends_on = None

_INDEX = """
CREATE INDEX jobs_live_key_fetch_idx ON pgjobs.jobs_live
    ((hashtext(queue)), priority, (hashtext(key)), run_at, id) INCLUDE (queue, key)
    WHERE status = 'queued' AND key IS NOT NULL;
"""

# The turns. A pass goes through the keys of one priority in the order of
# their hash, starting after `after_turn` (NULL: from the first), and takes
# each key's oldest due job that no other claim holds; at the end of the
# keys the jobs without a key take their turn, and the next pass starts at
# the first key again. A whole pass that takes nothing ends the priority,
# and the next priority that has queued jobs comes next.
#
# Each key costs two probes: the next key (the first entry whose key hash is
# greater: a jump over the whole key, however many jobs it has), then that
# key's oldest due job, read within the key only, skipping the rows other
# claims hold (SKIP LOCKED), the jobs this claim took already (a key's
# second job in a second pass), and the keys at their key_cap. A job
# that a claim ended meanwhile fails the recheck of `status = 'queued'`
# under the lock, and is skipped.
#
# The turn of the jobs without a key reads the priority's first 64 due
# jobs of the fetch index, and the key of each from the table, and takes the
# oldest one without a key (all that are wanted, when the keys had none in
# that pass); once it finds none, it is not looked for again in this
# priority of this claim.
#
# With key_cap, the running jobs of each key are counted once (all running
# jobs of the queue: at most the workers' slots), a key at its cap is
# skipped, and a key whose jobs taken here bring it to its cap joins them.
# The jobs in `ended` that the claiming worker (`claimer`) holds are not
# counted: it finished them, and their outcomes are on their way (see
# claim_within_limits below).
_CLAIM_TURNS = """
CREATE FUNCTION pgjobs.claim_turns(
    queue_name text, max_jobs integer, after_turn integer, key_cap integer,
    claimer bigint, ended bigint[], OUT ids bigint[], OUT turn integer
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    qhash integer := hashtext(queue_name);
    prio smallint := -1;
    cur bigint;
    from_start boolean;
    took integer;
    khash integer;
    jid bigint;
    loose bigint[];
    jkey text;
    unkeyed boolean;
    full_keys text[] := '{}';
    run_keys text[] := '{}';
    run_counts integer[] := '{}';
    at integer;
BEGIN
    ids := '{}';
    turn := after_turn;
    IF max_jobs <= 0 THEN
        RETURN;
    END IF;
    IF key_cap IS NOT NULL THEN
        SELECT coalesce(array_agg(b.key), '{}'), coalesce(array_agg(b.n), '{}')
          INTO run_keys, run_counts
          FROM (SELECT j.key, count(*)::integer AS n
                  FROM pgjobs.jobs_live AS j
                 WHERE j.status = 'running' AND j.queue = queue_name AND j.key IS NOT NULL
                   AND NOT (j.id = ANY (ended) AND j.worker_id IS NOT DISTINCT FROM claimer)
                 GROUP BY j.key) AS b;
        full_keys := ARRAY(SELECT u.k FROM unnest(run_keys, run_counts) AS u (k, n)
                            WHERE u.n >= key_cap);
    END IF;
    LOOP
        -- The next priority that has queued jobs (the fetch index: keyed or not).
        SELECT j.priority INTO prio
          FROM pgjobs.jobs_live AS j
         WHERE j.status = 'queued'
           AND hashtext(j.queue) = qhash AND j.queue = queue_name
           AND j.priority > prio
         ORDER BY j.priority
         LIMIT 1;
        EXIT WHEN NOT FOUND;
        cur := coalesce(after_turn::bigint, -2147483649);
        from_start := after_turn IS NULL;
        took := 0;
        unkeyed := true;
        LOOP
            SELECT hashtext(j.key) INTO khash
              FROM pgjobs.jobs_live AS j
             WHERE j.status = 'queued' AND j.key IS NOT NULL
               AND hashtext(j.queue) = qhash AND j.priority = prio
               AND hashtext(j.key) > cur
             ORDER BY hashtext(j.key)
             LIMIT 1;
            IF NOT FOUND THEN
                -- The end of the keys: the turn of the jobs without a key.
                IF unkeyed AND cardinality(ids) < max_jobs THEN
                    -- One job; all that are wanted when no key had one.
                    loose := ARRAY(
                        SELECT c.id
                          FROM (SELECT j.id, j.key
                                  FROM pgjobs.jobs_live AS j
                                 WHERE j.status = 'queued'
                                   AND hashtext(j.queue) = qhash AND j.queue = queue_name
                                   AND j.priority = prio AND j.run_at <= now()
                                 ORDER BY j.run_at, j.id
                                 LIMIT 64) AS c
                         WHERE c.key IS NULL AND c.id <> ALL (ids)
                         LIMIT CASE WHEN took = 0 THEN max_jobs - cardinality(ids) ELSE 1 END);
                    IF cardinality(loose) = 0 THEN
                        unkeyed := false;
                    ELSE
                        loose := ARRAY(
                            SELECT j.id
                              FROM pgjobs.jobs_live AS j
                             WHERE j.id = ANY (loose) AND j.status = 'queued'
                             ORDER BY j.run_at, j.id
                               FOR NO KEY UPDATE SKIP LOCKED);
                        IF cardinality(loose) > 0 THEN
                            ids := ids || loose;
                            took := took + cardinality(loose);
                            turn := NULL;
                        END IF;
                    END IF;
                END IF;
                EXIT WHEN cardinality(ids) >= max_jobs;
                EXIT WHEN from_start AND took = 0;
                cur := -2147483649;
                from_start := true;
                took := 0;
                CONTINUE;
            END IF;
            cur := khash;
            SELECT j.id, j.key INTO jid, jkey
              FROM pgjobs.jobs_live AS j
             WHERE j.status = 'queued' AND j.key IS NOT NULL
               AND hashtext(j.queue) = qhash AND j.queue = queue_name
               AND j.priority = prio AND hashtext(j.key) = khash
               AND j.run_at <= now()
               AND j.id <> ALL (ids) AND j.key <> ALL (full_keys)
             ORDER BY j.run_at, j.id
             LIMIT 1
               FOR NO KEY UPDATE SKIP LOCKED;
            IF FOUND THEN
                ids := ids || jid;
                took := took + 1;
                turn := khash;
                IF key_cap IS NOT NULL THEN
                    at := array_position(run_keys, jkey);
                    IF at IS NULL THEN
                        run_keys := run_keys || jkey;
                        run_counts := run_counts || 1;
                        at := cardinality(run_keys);
                    ELSE
                        run_counts[at] := run_counts[at] + 1;
                    END IF;
                    IF run_counts[at] >= key_cap THEN
                        full_keys := full_keys || jkey;
                    END IF;
                END IF;
                EXIT WHEN cardinality(ids) >= max_jobs;
            END IF;
        END LOOP;
        EXIT WHEN cardinality(ids) >= max_jobs;
    END LOOP;
END
$$;

COMMENT ON FUNCTION pgjobs.claim_turns(text, integer, integer, integer, bigint, bigint[]) IS
    'The ids of up to max_jobs due jobs of a queue, one per key in turn (keys in hash order '
    'after after_turn, then round again; jobs without a key take one turn at the end of each '
    'round), at most key_cap running per key (not counting the jobs in ended that claimer runs), '
    'locked for the caller''s claim; and the turn to start after next time.';

CREATE FUNCTION pgjobs.claim_keyed(
    queue_name text, max_jobs integer, after_turn integer, OUT ids bigint[], OUT turn integer
) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    ids := '{}';
    turn := after_turn;
    IF EXISTS (SELECT 1 FROM pgjobs.queues AS p
                WHERE p.name = queue_name
                  AND (p.paused OR p.concurrency IS NOT NULL OR p.key_concurrency IS NOT NULL
                       OR p.rate_limit IS NOT NULL OR p.key_rate_limit IS NOT NULL)) THEN
        RETURN;
    END IF;
    SELECT t.ids, t.turn INTO ids, turn
      FROM pgjobs.claim_turns(queue_name, max_jobs, after_turn, NULL, NULL, '{}') AS t;
END
$$;

COMMENT ON FUNCTION pgjobs.claim_keyed(text, integer, integer) IS
    'pgjobs.claim_turns() for a queue without limits: nothing while the queue is paused or has '
    'a limit (pgjobs.claim_within_limits() claims those).';
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


def _replaced(text: str, old: str, new: str) -> str:
    if old not in text:
        raise RuntimeError(f"migration 0017: {old!r} not found in 0013's SQL")
    return text.replace(old, new)


def _within_limits_sql(m0013: Any) -> str:
    # 0013's claim_within_limits(), with the turn in and out, and with the
    # keys of a queue without a key rate taking turns through claim_turns().
    text = m0013._CLAIM_WITHIN_LIMITS.split("\nCOMMENT ON FUNCTION", 1)[0]
    text = _replaced(
        text,
        "queue_name text, max_jobs integer, OUT ids bigint[], OUT rate_wait double precision",
        "queue_name text, max_jobs integer, after_turn integer, claimer bigint, ended bigint[],\n"
        "    OUT ids bigint[], OUT rate_wait double precision, OUT turn integer",
    )
    text = _replaced(text, "    ids := '{}';\n", "    ids := '{}';\n    turn := after_turn;\n")
    text = _replaced(
        text,
        "    IF key_cap IS NULL AND key_rate IS NULL THEN\n",
        "    IF key_rate IS NULL AND EXISTS (\n"
        "        SELECT 1 FROM pgjobs.jobs_live AS j\n"
        "         WHERE j.status = 'queued' AND j.key IS NOT NULL\n"
        "           AND hashtext(j.queue) = hashtext(queue_name) AND j.queue = queue_name\n"
        "    ) THEN\n"
        "        SELECT t.ids, t.turn INTO ids, turn\n"
        "          FROM pgjobs.claim_turns(queue_name, wanted, after_turn, key_cap, claimer, ended)"
        " AS t;\n"
        "    ELSIF key_rate IS NULL THEN\n",
    )
    text = _replaced(
        text,
        "         WHERE j.status = 'running' AND j.queue = queue_name;\n",
        "         WHERE j.status = 'running' AND j.queue = queue_name\n"
        "           AND NOT (j.id = ANY (ended) AND j.worker_id IS NOT DISTINCT FROM claimer);\n",
    )
    text = _replaced(
        text,
        "               AND j.status = 'running' AND j.queue = queue_name AND j.key IS NOT NULL\n",
        "               AND j.status = 'running' AND j.queue = queue_name AND j.key IS NOT NULL\n"
        "               AND NOT (j.id = ANY (ended) AND j.worker_id IS NOT DISTINCT FROM claimer)\n",
    )
    # A rate that holds some of the jobs back drops the last ones the turns
    # took: the turn to carry is then the last kept job's key (NULL for one
    # without a key, as claim_turns() says after such a job), or, none kept,
    # where this claim began. Otherwise the keys of the dropped jobs would
    # lose their turn at every claim that runs out of tokens.
    text = _replaced(
        text,
        "        ids := ids[1:greatest(tokens, 0)];\n",
        "        ids := ids[1:greatest(tokens, 0)];\n"
        "        IF key_rate IS NULL THEN\n"
        "            turn := CASE WHEN tokens > 0\n"
        "                         THEN (SELECT hashtext(j.key) FROM pgjobs.jobs_live AS j\n"
        "                                WHERE j.id = ids[tokens])\n"
        "                         ELSE after_turn END;\n"
        "        END IF;\n",
    )
    return (
        text
        + """
COMMENT ON FUNCTION pgjobs.claim_within_limits(text, integer, integer, bigint, bigint[]) IS
    'The ids of up to max_jobs queued jobs of a queue with a concurrency, key_concurrency or '
    'rate limit that may start now within them (the caller makes them running in the same '
    'transaction), keys taking turns after after_turn, the jobs in ended that claimer runs not '
    'counted; when a rate held the claim back, the seconds until its next token; and the turn '
    'to start after next time.';
"""
    )


def upgrade() -> None:
    m0013 = _load("0013_rate_limits.py")
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.execute(_INDEX)
    op.execute(_CLAIM_TURNS)
    op.execute(_within_limits_sql(m0013))


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.execute(
        "DROP FUNCTION pgjobs.claim_within_limits(text, integer, integer, bigint, bigint[])"
    )
    op.execute("DROP FUNCTION pgjobs.claim_keyed(text, integer, integer)")
    op.execute(
        "DROP FUNCTION pgjobs.claim_turns(text, integer, integer, integer, bigint, bigint[])"
    )
    op.execute("DROP INDEX pgjobs.jobs_live_key_fetch_idx")
