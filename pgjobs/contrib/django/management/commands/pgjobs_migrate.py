"""`manage.py pgjobs_migrate`: create or upgrade pgjobs' tables in Django's database."""

from __future__ import annotations

from typing import Any, ClassVar

from django.core.management.base import BaseCommand

from pgjobs import _migrate
from pgjobs.contrib.django._backend import dsn_for


class Command(BaseCommand):  # type: ignore[misc]
    help = (
        "Create or upgrade pgjobs' tables (the pgjobs schema) in a Django database; "
        "safe to run again. Same as `python -m pgjobs migrate --dsn ...` on that database."
    )
    # The checks would stop it: one of them says to run this command.
    requires_system_checks: ClassVar[list[str]] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--database",
            default="default",
            help="the Django database alias to migrate (default: default)",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="migrate even if running workers' code does not work with the new revision",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        before, after = _migrate.upgrade(
            dsn_for(options["database"]),
            force=options["force"],
            warn=lambda message: self.stderr.write(f"warning: {message}"),
        )
        if before == after:
            self.stdout.write(f"pgjobs schema already at revision {after}")
        else:
            self.stdout.write(f"pgjobs schema migrated from {before or 'nothing'} to {after}")
