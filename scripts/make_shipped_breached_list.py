"""Regenerates accounts/data/breached-passwords.bin, the breached-password list shipped so that the
check works out of the box: Django's own common-passwords.txt.gz (20,000 passwords from breach
corpora, lowercase) as written and with the first letter capitalised, as SHA-1 prefixes.

    .venv/bin/python scripts/make_shipped_breached_list.py

Deterministic: the same Django version gives the same file (tests/accounts/test_passwords.py checks
that the committed file is exactly this script's output). A deployment imports the full Pwned
Passwords list instead (manage.py import_breached_passwords, README "Passwords").
"""

from __future__ import annotations

import gzip
import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from accounts.breached import build  # noqa: E402

OUTPUT = ROOT / "accounts" / "data" / "breached-passwords.bin"


def common_passwords() -> list[str]:
    import django.contrib.auth

    source = Path(django.contrib.auth.__file__).parent / "common-passwords.txt.gz"
    with gzip.open(source, "rt", encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip()]


def variants(words: list[str]) -> Iterator[str]:
    for word in words:
        yield word
        capitalised = word[:1].upper() + word[1:]
        if capitalised != word:
            yield capitalised


def lines(words: list[str]) -> Iterator[bytes]:
    for password in variants(words):
        digest = hashlib.sha1(password.encode("utf-8"), usedforsecurity=False).hexdigest().upper()
        yield f"{digest}:1\n".encode()


def main(output: Path = OUTPUT) -> None:
    result = build(lines(common_passwords()), output)
    print(f"{result.records:,} passwords written to {output} ({output.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT)
