"""The offline breached-password list: a sorted file of SHA-1 prefixes, searched by bisection.

Format: a 32-byte header (magic ``BPHIBP01``, record width, reserved, record count) followed by
``count`` records of ``width`` bytes (the first bytes of the SHA-1 of each breached password),
sorted ascending and unique. A lookup maps the file read-only (``mmap``) and bisects it: about
log2(count) probes of ``width`` bytes, no parsing and no memory beyond the pages it touches, so
every web process shares one copy through the page cache.

Why this and not a Bloom filter (``scripts/bench_breached_structures.py`` builds both from the same
generated, unsorted ``SHA1:count`` file and measures them; README "Passwords" has the table). On
10 million hashes, on this 2-core machine, file in the page cache, one lookup at a time:

- sorted 8-byte prefixes: 80.0 MB (8 bytes a password), built in 32.7 s (5 runs merged), lookup
  5.9 us median / 10.0 us p99 for a listed password, 5.0 / 7.9 us for an unlisted one; false
  positives about count/2^64 (5e-13 here, 5e-11 for the full Pwned Passwords list), none seen;
- Bloom filter at 0.1 % false positives (k=10): 18.0 MB (1.8 bytes a password), built in 37.5 s,
  lookup 3.0 / 3.7 us listed, 1.1 / 2.6 us unlisted, and 0.099 % of never-breached passwords
  refused (measured over 200,000).

The Bloom filter is 4.4 times smaller and a few microseconds faster (nothing next to the argon2
hash of the same request); the sorted file is exact, so no customer is told that a password they
just made up "appeared in a breach" (one in a thousand would be, with the filter), and it is built
by a streaming external sort and can be checked record by record. Disk is cheap: the sorted file.

Building streams the input (``SHA1:count`` lines, any size, sorted or not): records are collected
in chunks of ``chunk_records``, each chunk sorted and written as a run, and the runs merged (or
simply concatenated when they do not overlap, as with Pwned Passwords' "ordered by hash" files).
Memory stays at one chunk whatever the input size.
"""

from __future__ import annotations

import heapq
import mmap
import os
import shutil
import struct
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAGIC = b"BPHIBP01"
HEADER = struct.Struct(">8sIIQ8x")  # magic, record width, reserved, record count, padding
DEFAULT_WIDTH = 8
DEFAULT_CHUNK_RECORDS = 1 << 21
_HEX = frozenset(b"0123456789ABCDEFabcdef")


class BreachedListError(Exception):
    """The input or the on-disk file is not what it should be (the message says where)."""


@dataclass(frozen=True)
class BuildResult:
    lines: int
    records: int
    skipped_below_min_count: int
    runs: int


def _parse(line: bytes, number: int, width: int) -> tuple[bytes, int] | None:
    line = line.strip()
    if not line:
        return None
    digest_hex, sep, count_text = line.partition(b":")
    if len(digest_hex) != 40 or not _HEX.issuperset(digest_hex):
        raise BreachedListError(f"line {number}: expected 40 hexadecimal characters of a SHA-1, then ':count'")
    count = 1
    if sep:
        try:
            count = int(count_text.replace(b",", b"").strip() or b"1")
        except ValueError as exc:
            raise BreachedListError(f"line {number}: the count after ':' is not a number") from exc
    return bytes.fromhex(digest_hex.decode("ascii"))[:width], count


def _write_run(records: list[bytes], directory: Path, index: int) -> tuple[Path, bytes, bytes]:
    records.sort()
    path = directory / f"run-{index:05d}"
    previous = b""
    with path.open("wb") as out:
        for record in records:
            if record != previous:
                out.write(record)
                previous = record
    return path, records[0], records[-1]


def _read_records(handle: BinaryIO, width: int, buffer_records: int = 65536) -> Iterator[bytes]:
    while True:
        block = handle.read(width * buffer_records)
        if not block:
            return
        for offset in range(0, len(block), width):
            yield block[offset : offset + width]


def build(
    lines: Iterable[bytes],
    out_path: Path,
    *,
    min_count: int = 1,
    width: int = DEFAULT_WIDTH,
    chunk_records: int = DEFAULT_CHUNK_RECORDS,
) -> BuildResult:
    """Writes the sorted prefix file for `lines` to `out_path` (atomically: a temporary file, then rename).

    Raises BreachedListError naming the first bad line; `out_path` is then left as it was.
    """
    if not 4 <= width <= 20:
        raise BreachedListError("the record width must be between 4 and 20 bytes")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=".breached-build-", dir=out_path.parent))
    try:
        runs: list[tuple[Path, bytes, bytes]] = []
        chunk: list[bytes] = []
        number = skipped = 0
        for number, raw in enumerate(lines, start=1):
            parsed = _parse(raw, number, width)
            if parsed is None:
                continue
            record, count = parsed
            if count < min_count:
                skipped += 1
                continue
            chunk.append(record)
            if len(chunk) >= chunk_records:
                runs.append(_write_run(chunk, workdir, len(runs)))
                chunk = []
        if chunk:
            runs.append(_write_run(chunk, workdir, len(runs)))
        body = workdir / "body"
        disjoint = all(runs[i][1] > runs[i - 1][2] for i in range(1, len(runs)))
        with body.open("wb") as out:
            if disjoint:
                for path, _first, _last in runs:
                    with path.open("rb") as run:
                        shutil.copyfileobj(run, out, 1 << 20)
            else:
                handles = [path.open("rb") for path, _first, _last in runs]
                try:
                    previous = b""
                    for record in heapq.merge(*(_read_records(h, width) for h in handles)):
                        if record != previous:
                            out.write(record)
                            previous = record
                finally:
                    for handle in handles:
                        handle.close()
        records = body.stat().st_size // width
        final = workdir / "final"
        with final.open("wb") as out, body.open("rb") as source:
            out.write(HEADER.pack(MAGIC, width, 0, records))
            shutil.copyfileobj(source, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.replace(final, out_path)
        return BuildResult(lines=number, records=records, skipped_below_min_count=skipped, runs=len(runs))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class PrefixFile:
    """A read-only view of one built file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        with self.path.open("rb") as handle:
            stat = os.fstat(handle.fileno())
            if stat.st_size < HEADER.size:
                raise BreachedListError(f"{self.path}: too short to be a breached-password file")
            self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        magic, width, _reserved, count = HEADER.unpack_from(self._map, 0)
        if magic != MAGIC:
            raise BreachedListError(f"{self.path}: not a breached-password file (built by import_breached_passwords)")
        if HEADER.size + width * count != stat.st_size:
            raise BreachedListError(f"{self.path}: truncated or damaged ({count} records announced)")
        self.width: int = width
        self.count: int = count
        self.signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def contains_digest(self, digest: bytes) -> bool:
        key = digest[: self.width]
        data, width, base = self._map, self.width, HEADER.size
        lo, hi = 0, self.count
        while lo < hi:
            mid = (lo + hi) // 2
            start = base + mid * width
            if data[start : start + width] < key:
                lo = mid + 1
            else:
                hi = mid
        start = base + lo * width
        return lo < self.count and data[start : start + width] == key

    def close(self) -> None:
        self._map.close()


_open_files: dict[str, PrefixFile] = {}
_open_lock = threading.Lock()


def open_prefix_file(path: Path) -> PrefixFile:
    """The mapped file for `path`, re-opened when it was replaced (a new import) since the last call."""
    key = str(path)
    current = _open_files.get(key)
    stat = os.stat(path)
    if current is not None and current.signature == (stat.st_ino, stat.st_mtime_ns, stat.st_size):
        return current
    with _open_lock:
        current = _open_files.get(key)
        if current is None or current.signature != (stat.st_ino, stat.st_mtime_ns, stat.st_size):
            # The old map stays valid for a lookup in flight; it is closed when collected.
            current = PrefixFile(Path(path))
            _open_files[key] = current
        return current
