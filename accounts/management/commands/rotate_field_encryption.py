"""Re-encrypts every secret at rest under the current FIELD_ENCRYPTION_KEY (the first of the list).

Every text column whose name ends in `_encrypted`, in every installed app, is one of
core.crypto's values (TOTP seeds, outbox bodies, ...). Rows are read and rewritten in batches by
primary key, each batch in its own transaction with its rows locked, so the command can run on a
live system and be interrupted and run again: values already under the current key are skipped.
A value that no configured key decrypts is reported and left alone (exit status 1).
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models, transaction

from core.crypto import DecryptionError, is_current, reencrypt


def encrypted_columns() -> list[tuple[type[models.Model], list[str]]]:
    found = []
    for model in apps.get_models():
        names = [
            f.name
            for f in model._meta.concrete_fields
            if f.name.endswith("_encrypted") and isinstance(f, models.TextField | models.CharField)
        ]
        if names:
            found.append((model, names))
    return found


class Command(BaseCommand):
    help = "Re-encrypts every *_encrypted column under the first FIELD_ENCRYPTION_KEY (key rotation)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument("--dry-run", action="store_true", help="count what would change, change nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        batch = max(1, int(options["batch_size"]))
        dry_run = bool(options["dry_run"])
        total_changed = total_bad = 0
        for model, fields in encrypted_columns():
            changed = bad = 0
            last_pk: Any = None
            while True:
                with transaction.atomic():
                    rows = model._default_manager.select_for_update().order_by("pk")
                    if last_pk is not None:
                        rows = rows.filter(pk__gt=last_pk)
                    page = list(rows.only("pk", *fields)[:batch])
                    if not page:
                        break
                    for row in page:
                        updates: dict[str, str] = {}
                        for name in fields:
                            value = getattr(row, name) or ""
                            if not value or is_current(value):
                                continue
                            try:
                                updates[name] = reencrypt(value)
                            except DecryptionError:
                                bad += 1
                                self.stderr.write(f"{model._meta.label} {row.pk} {name}: no configured key decrypts it")
                        if updates:
                            changed += 1
                            if not dry_run:
                                model._default_manager.filter(pk=row.pk).update(**updates)
                    last_pk = page[-1].pk
            label = f"{model._meta.label}: {changed} row(s) {'to re-encrypt' if dry_run else 're-encrypted'}"
            self.stdout.write(label + (f", {bad} value(s) unreadable" if bad else ""))
            total_changed += changed
            total_bad += bad
        if not dry_run and total_changed:
            from audit.events import EventType
            from audit.services import record

            record(type=EventType.FIELD_KEY_ROTATED, reason="rotate_field_encryption", details={"rows": total_changed})
        if total_bad:
            raise CommandError(f"{total_bad} value(s) could not be decrypted with any configured key")
