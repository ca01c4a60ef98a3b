"""Alembic environment for the pgjobs schema (its version table is pgjobs.alembic_version)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from pgjobs._names import MIGRATE_LOCK_KEY

config = context.config


def run_offline() -> None:
    """Print the DDL (`pgjobs migrate --sql`) instead of running it."""
    context.configure(
        url="postgresql://",
        literal_binds=True,
        version_table_schema="pgjobs",
        dialect_opts={"paramstyle": "named"},
        transactional_ddl=True,
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
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
