"""Alembic environment for the pgjobs schema (its version table is pgjobs.alembic_version)."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import text

from pgjobs._names import MIGRATE_LOCK_KEY

config = context.config


# Upserted after each upgrade step that declares `oldest_code` (0015 and later);
# pgjobs/_window.py says what the row means.
_RECORD_WINDOW = text(
    "INSERT INTO pgjobs.schema_window (revision, oldest_code) VALUES (:revision, :oldest) "
    "ON CONFLICT (revision) DO UPDATE SET oldest_code = EXCLUDED.oldest_code, applied_at = now()"
)


def record_window(ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
    """Record in pgjobs.schema_window the oldest code that works against the revision reached.

    Alembic calls it after each migration step, in the migration's
    transaction (and prints the statement with `--sql`). A downgrade leaves
    the rows as they are: the reader looks up the revision the database is at.
    """
    if not step.is_upgrade or step.is_stamp:
        return
    script = step.revision_map.get_revision(step.up_revision_id)
    oldest = getattr(script.module, "oldest_code", None)
    if oldest is None:
        return  # a revision before 0015: it declares no window
    ctx.execute(_RECORD_WINDOW.bindparams(revision=script.revision, oldest=oldest))


def run_offline() -> None:
    """Print the DDL (`pgjobs migrate --sql`) instead of running it."""
    context.configure(
        url="postgresql://",
        literal_binds=True,
        version_table_schema="pgjobs",
        dialect_opts={"paramstyle": "named"},
        transactional_ddl=True,
        on_version_apply=record_window,
    )
    with context.begin_transaction():
        context.execute("CREATE SCHEMA IF NOT EXISTS pgjobs")
        context.run_migrations()


def run_online() -> None:
    """Apply the migrations on the connection that pgjobs._migrate handed over."""
    connection = config.attributes["connection"]
    # Serialise concurrent migrators. The lock is transaction-scoped, so it goes
    # away with the transaction whatever happens, and the second migrator finds
    # the schema current once it gets the lock.
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATE_LOCK_KEY})
    # The version table lives in our schema, which must exist before Alembic
    # looks for the table.
    connection.execute(text("CREATE SCHEMA IF NOT EXISTS pgjobs"))
    context.configure(
        connection=connection,
        version_table_schema="pgjobs",
        transactional_ddl=True,
        transaction_per_migration=False,
        on_version_apply=record_window,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
