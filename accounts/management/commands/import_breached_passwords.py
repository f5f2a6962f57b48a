from __future__ import annotations

import argparse
import contextlib
import gzip
import sys
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any, cast

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.breached import DEFAULT_CHUNK_RECORDS, BreachedListError, build, open_prefix_file
from accounts.passwords import SHIPPED_BREACHED_FILE


class Command(BaseCommand):
    help = (
        "Builds the offline breached-password file from a Pwned-Passwords-style list (SHA1:count lines, "
        "uppercase hex, sorted or not, plain or .gz, '-' for stdin). The input is streamed, never loaded "
        "whole. Writes BREACHED_PASSWORDS_FILE (or --output) atomically; running web processes pick the "
        "new file up at their next lookup."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the SHA1:count list (e.g. pwned-passwords-sha1-ordered-by-hash.txt)")
        parser.add_argument("--output", default="", help="where to write (default: BREACHED_PASSWORDS_FILE)")
        parser.add_argument(
            "--min-count", type=int, default=1, help="keep only passwords seen at least this many times (default 1)"
        )
        parser.add_argument("--chunk-records", type=int, default=DEFAULT_CHUNK_RECORDS, help=argparse.SUPPRESS)

    def handle(self, *args: Any, **options: Any) -> None:
        output = Path(options["output"] or settings.BREACHED_PASSWORDS_FILE)
        if not options["output"] and output.resolve() == SHIPPED_BREACHED_FILE.resolve():
            raise CommandError(
                "BREACHED_PASSWORDS_FILE is the small list shipped in the repository; set it to a path of "
                "your own (e.g. /var/lib/bank-portal/breached-passwords.bin) or pass --output"
            )
        if options["min_count"] < 1:
            raise CommandError("--min-count must be at least 1")
        if options["chunk_records"] < 1:
            raise CommandError("--chunk-records must be at least 1")
        started = time.monotonic()
        try:
            with _open_input(options["file"]) as lines:
                result = build(lines, output, min_count=options["min_count"], chunk_records=options["chunk_records"])
            built = open_prefix_file(output)
        except BreachedListError as exc:
            raise CommandError(f"{options['file']}: {exc}; {output} was left unchanged") from exc
        except OSError as exc:
            raise CommandError(f"{exc.filename or options['file']}: {exc.strerror or exc}") from exc
        self.stdout.write(
            f"{result.records:,} breached passwords from {result.lines:,} lines "
            f"({result.skipped_below_min_count:,} below --min-count) written to {output} "
            f"({output.stat().st_size:,} bytes, {built.width}-byte prefixes) in {time.monotonic() - started:.1f} s"
        )


def _open_input(name: str) -> AbstractContextManager[IO[bytes]]:
    if name == "-":
        return contextlib.nullcontext(sys.stdin.buffer)
    path = Path(name)
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    handle = gzip.open(path, "rb") if gzipped else path.open("rb")  # noqa: SIM115 (the caller closes it)
    return cast(AbstractContextManager[IO[bytes]], handle)
