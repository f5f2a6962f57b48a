"""`manage.py audit_partitions`: creates the audit log's monthly partitions ahead and lists them."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import partitions


class Command(BaseCommand):
    help = "Creates the missing monthly partitions of the audit log (PostgreSQL) and lists them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--months-ahead",
            type=int,
            default=None,
            help="Months after the current one to create (default: AUDIT_PARTITION_MONTHS_AHEAD).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        ahead = options["months_ahead"]
        if ahead is not None and not 0 <= ahead <= 120:
            raise CommandError("--months-ahead must be between 0 and 120")
        if not partitions.is_partitioned():
            self.stdout.write(
                "The audit log is not partitioned on this database (SQLite or not migrated): nothing to do."
            )
            return
        created = partitions.ensure_partitions(ahead=ahead)
        self.stdout.write(f"Created {len(created)} partition(s){': ' + ', '.join(created) if created else ''}.")
        for partition in partitions.list_partitions():
            rows = "?" if partition.rows < 0 else f"~{partition.rows}"
            self.stdout.write(f"  {partition.name}  {partition.bounds}  {rows} rows")
