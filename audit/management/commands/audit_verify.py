"""`manage.py audit_verify`: checks the audit hash chain; non-zero exit on the first bad event.

Incremental by default (from the checkpoint the last passing verification ended on); `--full`
recomputes the whole chain from the genesis hash."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import chain


class Command(BaseCommand):
    help = "Checks the audit log's hash chain; names the first altered, inserted or missing event."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seal", action="store_true", help="Seal settled events into checkpoints first.")
        parser.add_argument(
            "--full",
            action="store_true",
            help="Recompute the whole chain (default: from the last verified checkpoint onwards).",
        )
        parser.add_argument(
            "--anchor",
            action="append",
            default=[],
            metavar="SEQ:HASH",
            help="A checkpoint hash kept outside the database (e.g. from the logs); may be repeated.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["seal"]:
            sealed = chain.seal_pending()
            self.stdout.write(f"Sealed {sealed} events.")
        anchors: dict[int, str] = {}
        for value in options["anchor"]:
            seq, _, digest = str(value).partition(":")
            if not seq.isdigit() or len(digest) != 64:
                raise CommandError(f"--anchor wants SEQ:HASH (64 hex digits), not {value!r}")
            anchors[int(seq)] = digest.lower()
        result = chain.verify(anchors=anchors, full=options["full"])
        if result.ok:
            self.stdout.write(self.style.SUCCESS(result.describe()))
            return
        raise CommandError(f"audit chain verification FAILED: {result.describe()}", returncode=1)
