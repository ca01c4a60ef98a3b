"""Circuit breakers: a task that keeps failing is held back from every worker for a cooldown.

- `pgjobs.task_breakers`: one row per task that has a breaker
  (`@app.task(circuit_breaker=pgjobs.CircuitBreaker(failures=5, cooldown=60))`,
  written when a worker starts). `state` is `closed` (its jobs run),
  `open` (held: no claim takes them until `retry_at`) or `half_open` (one
  trial job, `trial_job_id`, may run; the others stay held until it ends).
  CHECK constraints refuse `failures` or `cooldown` below 1 and 0.
- `pgjobs.breakers_record(tasks, ids, queues, ok)`: called in the
  transaction of every outcome (complete.sql, complete_one.sql, rescue.sql)
  with the attempts that succeeded (ok) or failed. With no breaker for those
  tasks it returns after one probe of the (usually tiny) table. A closed
  breaker counts consecutive failed attempts (a retry's too) and opens at
  `failures`; the trial's success closes it and its failure opens it again.
  Other outcomes of an open or half-open breaker's task change nothing:
  those jobs started before it opened.
- `pgjobs.breakers_trial()`: run by the leader (pgjobs/worker/_breakers.py).
  It turns each open breaker whose cooldown is over into half_open, naming
  one due queued job of the task as the trial, and names another when the
  trial ended without an outcome that counts (cancelled, deleted).
- Every claim leaves out the jobs of a task whose breaker is not closed,
  except a trial: claim.sql and claim_one_queue.sql say so themselves, and
  the functions that search for jobs in the database get the same
  condition: `pgjobs.claim_within_limits()` (both forms, migrations 0013
  and 0017) and `pgjobs.claim_turns()` (0017, the keys' turns, which
  `pgjobs.claim_keyed()` uses too). It is patched into whatever body the
  database has, after the line `AND j.run_at <= now()` of each of their two
  job searches, so a function keeps its own changes.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

from alembic import op

# The revision, in one place (renumbering this migration changes these two).
revision = "0018"
down_revision = "0017"
# An expand: code of 0017 still claims and completes (it neither counts
# outcomes nor holds jobs back; declare a breaker once every worker is new).
oldest_code = down_revision
branch_labels = None
depends_on = None

_TABLE = """
CREATE TABLE pgjobs.task_breakers (
    task text PRIMARY KEY,
    failures integer NOT NULL CONSTRAINT task_breakers_failures_positive CHECK (failures > 0),
    cooldown double precision NOT NULL
        CONSTRAINT task_breakers_cooldown_positive CHECK (cooldown > 0),
    state text NOT NULL DEFAULT 'closed'
        CONSTRAINT task_breakers_state_valid CHECK (state IN ('closed', 'open', 'half_open')),
    consecutive_failures integer NOT NULL DEFAULT 0,
    opened_at timestamptz,
    retry_at timestamptz,
    trial_job_id bigint,
    updated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE pgjobs.task_breakers IS
    'Circuit breakers, one per task that has one: while a breaker is open or half_open, no '
    'claim takes its task''s jobs (but the trial_job_id of a half_open one).';
COMMENT ON COLUMN pgjobs.task_breakers.failures IS
    'Consecutive failed attempts (retries included) that open the breaker.';
COMMENT ON COLUMN pgjobs.task_breakers.cooldown IS
    'Seconds an opened breaker holds the task''s jobs before a trial job may run.';
COMMENT ON COLUMN pgjobs.task_breakers.state IS
    'closed: jobs run; open: held until retry_at; half_open: only trial_job_id may run, '
    'and its outcome closes (success) or opens again (failure) the breaker.';
COMMENT ON COLUMN pgjobs.task_breakers.consecutive_failures IS
    'Failed attempts since the last success (0 after one).';
"""

# The breakers' outcomes, in the order given (a batch of outcomes is one
# moment; within it, the order the completer wrote them). The rows are
# locked in task order first, so two completers never deadlock. A success
# of a closed breaker with no failure counted writes nothing: a breaker
# costs its task's successes one probe, not an update each.
_RECORD = """
CREATE FUNCTION pgjobs.breakers_record(
    tasks text[], ids bigint[], queues text[], ok boolean[]
) RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    o record;
    b record;
    changed integer := 0;
BEGIN
    PERFORM 1 FROM pgjobs.task_breakers AS t WHERE t.task = ANY (tasks)
     ORDER BY t.task FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    FOR o IN
        SELECT u.task, u.id, u.queue, u.ok
          FROM unnest(tasks, ids, queues, ok) WITH ORDINALITY AS u (task, id, queue, ok, n)
         WHERE EXISTS (SELECT 1 FROM pgjobs.task_breakers AS t WHERE t.task = u.task)
         ORDER BY u.n
    LOOP
        SELECT * INTO b FROM pgjobs.task_breakers AS t WHERE t.task = o.task;
        IF b.state = 'closed' THEN
            IF o.ok THEN
                CONTINUE WHEN b.consecutive_failures = 0;
                UPDATE pgjobs.task_breakers AS t
                   SET consecutive_failures = 0, updated_at = now()
                 WHERE t.task = o.task;
            ELSIF b.consecutive_failures + 1 >= b.failures THEN
                UPDATE pgjobs.task_breakers AS t
                   SET state = 'open', consecutive_failures = b.consecutive_failures + 1,
                       opened_at = now(), retry_at = now() + make_interval(secs => b.cooldown),
                       trial_job_id = NULL, updated_at = now()
                 WHERE t.task = o.task;
            ELSE
                UPDATE pgjobs.task_breakers AS t
                   SET consecutive_failures = b.consecutive_failures + 1, updated_at = now()
                 WHERE t.task = o.task;
            END IF;
        ELSIF b.state = 'half_open' AND b.trial_job_id = o.id THEN
            IF o.ok THEN
                UPDATE pgjobs.task_breakers AS t
                   SET state = 'closed', consecutive_failures = 0, opened_at = NULL,
                       retry_at = NULL, trial_job_id = NULL, updated_at = now()
                 WHERE t.task = o.task;
                -- The held jobs may run now: idle workers of the trial's queue are told.
                PERFORM pgjobs.wake(o.queue);
            ELSE
                UPDATE pgjobs.task_breakers AS t
                   SET state = 'open', consecutive_failures = b.consecutive_failures + 1,
                       opened_at = now(), retry_at = now() + make_interval(secs => b.cooldown),
                       trial_job_id = NULL, updated_at = now()
                 WHERE t.task = o.task;
            END IF;
        ELSE
            -- Open, or another job than the trial: it started before the
            -- breaker opened, and its outcome says nothing new.
            CONTINUE;
        END IF;
        changed := changed + 1;
    END LOOP;
    RETURN changed;
END
$$;

COMMENT ON FUNCTION pgjobs.breakers_record(text[], bigint[], text[], boolean[]) IS
    'Called with the attempts that succeeded (ok) or failed: counts failures of the tasks that '
    'have a breaker, opens it at its threshold, and closes or reopens it on its trial''s outcome.';
"""

# A trial is any due queued job of the task in a queue that is not paused
# and that a live worker serves (one nobody claims would hold the breaker
# half-open for ever). There is no index by task: finding one reads the
# live table until it meets such a job, once per cooldown, or on each of
# the leader's passes while the task has no due job.
_TRIAL = """
CREATE FUNCTION pgjobs.breakers_trial()
RETURNS TABLE (breaker text, trial bigint, trial_queue text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    b record;
    picked record;
BEGIN
    FOR b IN
        SELECT t.task, t.state
          FROM pgjobs.task_breakers AS t
         WHERE (t.state = 'open' AND t.retry_at <= now())
            OR (t.state = 'half_open'
                AND NOT EXISTS (SELECT 1 FROM pgjobs.jobs_live AS j
                                 WHERE j.id = t.trial_job_id
                                   AND j.status IN ('queued', 'running')))
         ORDER BY t.task
           FOR NO KEY UPDATE SKIP LOCKED
    LOOP
        SELECT j.id, j.queue INTO picked
          FROM pgjobs.jobs_live AS j
         WHERE j.task = b.task
           AND j.status = 'queued'
           AND j.run_at <= now()
           AND NOT EXISTS (SELECT 1 FROM pgjobs.queues AS p WHERE p.name = j.queue AND p.paused)
           AND EXISTS (SELECT 1 FROM pgjobs.workers AS w WHERE j.queue = ANY (w.queues))
         LIMIT 1;
        IF FOUND THEN
            UPDATE pgjobs.task_breakers AS t
               SET state = 'half_open', trial_job_id = picked.id, updated_at = now()
             WHERE t.task = b.task;
            PERFORM pgjobs.wake(picked.queue);
            breaker := b.task;
            trial := picked.id;
            trial_queue := picked.queue;
            RETURN NEXT;
        ELSIF b.state = 'half_open' THEN
            -- The trial went without an outcome that counts, and no job is
            -- due to replace it: open, past its cooldown, until one is.
            UPDATE pgjobs.task_breakers AS t
               SET state = 'open', trial_job_id = NULL, updated_at = now()
             WHERE t.task = b.task;
        END IF;
    END LOOP;
END
$$;

COMMENT ON FUNCTION pgjobs.breakers_trial() IS
    'For the leader: names a trial job for each open breaker whose cooldown is over (it becomes '
    'half_open), or a new one when the trial ended uncounted; returns the trials named.';
"""

#: In each job search of pgjobs.claim_within_limits(), the line after which
#: the breakers' condition goes.
_ANCHOR = "AND j.run_at <= now()"
#: The condition: not a job of a task whose breaker is open or half-open,
#: unless it is that breaker's trial. The claim statements say the same
#: (pgjobs/sql/claim.sql, claim_one_queue.sql).
_HELD = (
    "AND (j.task <> ALL (ARRAY(SELECT tb.task FROM pgjobs.task_breakers AS tb"
    " WHERE tb.state <> 'closed'))"
    " OR j.id = ANY (ARRAY(SELECT tb.trial_job_id FROM pgjobs.task_breakers AS tb"
    " WHERE tb.state = 'half_open')))"
)


#: The functions whose job searches get the condition: 0013's claim for
#: limited queues, and 0017's turns between keys and its claim for limited
#: queues that uses them. Each searches twice.
_SEARCHES = (
    "pgjobs.claim_within_limits(text, integer)",
    "pgjobs.claim_within_limits(text, integer, integer, bigint, bigint[])",
    "pgjobs.claim_turns(text, integer, integer, integer, bigint, bigint[])",
)


def _patch(function: str, old: str, new: str) -> str:
    """A DO block replacing `old` by `new` in the database's `function`.

    Done in SQL, on the body the database has, so that it works offline
    (`pgjobs migrate --sql`) and keeps another migration's changes.
    """
    return f"""
DO $patch$
DECLARE
    body text := pg_get_functiondef('{function}'::regprocedure);
    old text := $old${old}$old$;
    found integer;
BEGIN
    found := (length(body) - length(replace(body, old, ''))) / length(old);
    IF found <> 2 THEN
        RAISE EXCEPTION 'migration {revision}: expected 2 of % in {function}, found %',
                        old, found;
    END IF;
    EXECUTE replace(body, old, $new${new}$new$);
END
$patch$
"""


def upgrade() -> None:
    op.execute(_TABLE)
    op.execute(_RECORD)
    op.execute(_TRIAL)
    for function in _SEARCHES:
        op.execute(_patch(function, _ANCHOR, f"{_ANCHOR}\n               {_HELD}"))


def downgrade() -> None:
    for function in _SEARCHES:
        op.execute(_patch(function, f"{_ANCHOR}\n               {_HELD}", _ANCHOR))
    op.execute("DROP FUNCTION pgjobs.breakers_trial()")
    op.execute("DROP FUNCTION pgjobs.breakers_record(text[], bigint[], text[], boolean[])")
    op.execute("DROP TABLE pgjobs.task_breakers")
