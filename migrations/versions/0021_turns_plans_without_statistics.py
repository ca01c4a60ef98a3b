"""The keys' turns read the keyed index whatever statistics PostgreSQL has.

pgjobs.claim_turns() (migration 0017) finds each key with two probes meant
for `jobs_live_key_fetch_idx`: the next key after a hash, then that key's
oldest due job. Both could also be answered by the fetch index (the queue's
jobs in run_at order, every key mixed), and which one PostgreSQL took
depended on the statistics of `pgjobs.jobs_live`: none at all (a new
database, until autovacuum first analyzes the table: up to a minute), those
of an empty table, or those of a table whose jobs had no key. Without the
key's statistics every index looked as if it returned one row, and the
planner read the whole queue through the fetch index, sorting it for the
first probe and filtering it for the second. With 30,000 queued jobs of 50
keys a claim of 50 jobs took 140 to 280 ms instead of 1.1 ms; with one key
holding 30,000 jobs and 49 keys one each, 530 ms. A worker drained a fresh
keyed queue at 90 jobs/s until the first ANALYZE, then at 5,500.

Now the plan is the same in every case:

- the function runs with `enable_sort = off`, so a plan that sorts the
  queue's jobs is priced out wherever an index gives the order;
- the second probe names its key as a range (`>= khash AND <= khash`)
  and orders by the key's hash first: only the keyed index gives that
  order, where an equality let the planner drop the key from the order and
  take the fetch index;
- the jobs without a key, once chosen, are locked in the order of the
  chosen ids (`array_position`) instead of a sort by (run_at, id), for
  which the fetch index would now have looked cheaper than reading them by
  their ids.

Same function, same arguments, same results: only its plans change.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from alembic import op

# The revision, in one place (renumbering this migration changes these two).
revision = "0021"
down_revision = "0020"
# An expand: code of 0020 calls the same functions with the same arguments.
oldest_code = down_revision
branch_labels = None
depends_on = None

_FUNCTION = "pgjobs.claim_turns(text, integer, integer, integer, bigint, bigint[])"

#: (before, after) for each statement that changes, as the function's body
#: has it since migrations 0017 and 0018.
_CHANGES = (
    (
        "AND j.priority = prio AND hashtext(j.key) = khash",
        "AND j.priority = prio AND hashtext(j.key) >= khash AND hashtext(j.key) <= khash",
    ),
    (
        """             ORDER BY j.run_at, j.id
             LIMIT 1
               FOR NO KEY UPDATE SKIP LOCKED;""",
        """             -- The key as a range and this order: only the keyed index
             -- gives it, whatever the statistics (migration 0021).
             ORDER BY hashtext(j.key), j.run_at, j.id
             LIMIT 1
               FOR NO KEY UPDATE SKIP LOCKED;""",
    ),
    (
        """                        loose := ARRAY(
                            SELECT j.id
                              FROM pgjobs.jobs_live AS j
                             WHERE j.id = ANY (loose) AND j.status = 'queued'
                             ORDER BY j.run_at, j.id
                               FOR NO KEY UPDATE SKIP LOCKED);""",
        """                        loose := ARRAY(
                            SELECT l.id
                              FROM (SELECT j.id
                                      FROM pgjobs.jobs_live AS j
                                     WHERE j.id = ANY (loose) AND j.status = 'queued'
                                       FOR NO KEY UPDATE SKIP LOCKED) AS l
                             ORDER BY array_position(loose, l.id));""",
    ),
)


def _replace(old: str, new: str) -> str:
    """A DO block replacing the one `old` by `new` in the database's claim_turns().

    Done in SQL, on the body the database has, so that it works offline
    (`pgjobs migrate --sql`); a body without exactly one `old` stops the
    migration, changing nothing.
    """
    return f"""
DO $change$
DECLARE
    body text := pg_get_functiondef('{_FUNCTION}'::regprocedure);
    old text := $old${old}$old$;
    found integer;
BEGIN
    found := (length(body) - length(replace(body, old, ''))) / length(old);
    IF found <> 1 THEN
        RAISE EXCEPTION 'migration {revision}: expected 1 of % in {_FUNCTION}, found %',
                        old, found;
    END IF;
    EXECUTE replace(body, old, $new${new}$new$);
END
$change$
"""


def upgrade() -> None:
    for old, new in _CHANGES:
        op.execute(_replace(old, new))
    op.execute(f"ALTER FUNCTION {_FUNCTION} SET enable_sort = off")


def downgrade() -> None:
    op.execute(f"ALTER FUNCTION {_FUNCTION} RESET enable_sort")
    for old, new in _CHANGES:
        op.execute(_replace(new, old))
