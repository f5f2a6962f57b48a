"""Builds the two candidate offline breached-password structures from generated hashes and measures them.

    .venv/bin/python scripts/bench_breached_structures.py --count 10000000

1. the sorted prefix file of accounts/breached.py (the one the portal uses), built by the same
   streaming code as `manage.py import_breached_passwords`, from an unsorted `SHA1:count` file;
2. a Bloom filter (written here only to compare), bits in a file mapped read-only like the first,
   k positions by double hashing of the SHA-1 itself (it is already uniform).

Prints, for each: build time, size on disk, bytes per password, lookup time (median and 99th
percentile over present and absent passwords, one lookup at a time, file already in the page
cache) and the measured false-positive rate. Nothing here runs in the test suite; the figures go in
README "Passwords" and the docstring of accounts/breached.py.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import mmap
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from accounts.breached import build as build_prefix_file
from accounts.breached import open_prefix_file


def generate(path: Path, count: int, seed: int) -> list[bytes]:
    """Writes `count` random SHA1:count lines (unsorted, uppercase); returns a sample of their digests."""
    rng = random.Random(seed)  # noqa: S311 (test data, not secrets)
    sample: list[bytes] = []
    with path.open("wb") as out:
        for i in range(count):
            digest = rng.randbytes(20)
            if i % max(1, count // 20000) == 0:
                sample.append(digest)
            out.write(digest.hex().upper().encode() + b":" + str(rng.randint(1, 5000)).encode() + b"\n")
    return sample


class Bloom:
    HEADER = 16

    def __init__(self, path: Path) -> None:
        with path.open("rb") as handle:
            self.map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        self.m = int.from_bytes(self.map[0:8], "big")
        self.k = int.from_bytes(self.map[8:16], "big")

    @staticmethod
    def build(path: Path, source: Path, count: int, fp_rate: float) -> tuple[int, int]:
        m = math.ceil(-count * math.log(fp_rate) / (math.log(2) ** 2))
        k = max(1, round(m / count * math.log(2)))
        bits = bytearray((m + 7) // 8)
        with source.open("rb") as lines:
            for line in lines:
                digest = bytes.fromhex(line[:40].decode())
                h1 = int.from_bytes(digest[0:8], "big")
                h2 = int.from_bytes(digest[8:16], "big") | 1
                for i in range(k):
                    pos = (h1 + i * h2) % m
                    bits[pos >> 3] |= 1 << (pos & 7)
        with path.open("wb") as out:
            out.write(m.to_bytes(8, "big") + k.to_bytes(8, "big"))
            out.write(bits)
        return m, k

    def __contains__(self, digest: bytes) -> bool:
        h1 = int.from_bytes(digest[0:8], "big")
        h2 = int.from_bytes(digest[8:16], "big") | 1
        data, m, base = self.map, self.m, self.HEADER
        for i in range(self.k):
            pos = (h1 + i * h2) % m
            if not data[base + (pos >> 3)] & (1 << (pos & 7)):
                return False
        return True


def timings(check, digests: list[bytes]) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
    samples, hits = [], 0
    for digest in digests * 3:
        start = time.perf_counter_ns()
        hit = check(digest)
        samples.append(time.perf_counter_ns() - start)
        hits += bool(hit)
    samples.sort()
    return statistics.median(samples) / 1000, samples[int(len(samples) * 0.99)] / 1000, hits // 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--bloom-fp", type=float, default=0.001)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="breached-bench-") as tmp:
        directory = Path(tmp)
        source = directory / "hashes.txt"
        start = time.perf_counter()
        present = generate(source, args.count, args.seed)
        print(
            f"generated {args.count:,} SHA1:count lines ({source.stat().st_size / 1e6:.1f} MB) in "
            f"{time.perf_counter() - start:.1f} s"
        )
        rng = random.Random(args.seed + 1)  # noqa: S311
        absent = [hashlib.sha1(rng.randbytes(16), usedforsecurity=False).digest() for _ in range(len(present))]

        prefix_path = directory / "breached.bin"
        start = time.perf_counter()
        with source.open("rb") as lines:
            result = build_prefix_file(lines, prefix_path)
        build_prefix = time.perf_counter() - start
        prefix = open_prefix_file(prefix_path)
        p_in = timings(prefix.contains_digest, present)
        p_out = timings(prefix.contains_digest, absent)
        size = prefix_path.stat().st_size

        bloom_path = directory / "breached.bloom"
        start = time.perf_counter()
        m, k = Bloom.build(bloom_path, source, args.count, args.bloom_fp)
        build_bloom = time.perf_counter() - start
        bloom = Bloom(bloom_path)
        b_in = timings(bloom.__contains__, present)
        b_out = timings(bloom.__contains__, absent)
        bloom_size = bloom_path.stat().st_size
        probe = [hashlib.sha1(rng.randbytes(16), usedforsecurity=False).digest() for _ in range(200_000)]
        false_positives = sum(1 for d in probe if d in bloom)

        print(f"\n{args.count:,} hashes, {len(present):,} present and {len(absent):,} absent lookups each x3")
        print("| structure | build | size | bytes/password | lookup p50 / p99 (present) | (absent) | false positives |")
        print("|---|---|---|---|---|---|---|")
        print(
            f"| sorted 8-byte prefixes, bisection (mmap) | {build_prefix:.1f} s ({result.runs} runs) | "
            f"{size / 1e6:.1f} MB | {size / args.count:.2f} | {p_in[0]:.1f} / {p_in[1]:.1f} us | "
            f"{p_out[0]:.1f} / {p_out[1]:.1f} us | ~{args.count / 2**64:.0e} (found {p_in[2]}/{len(present)}, "
            f"absent hits {p_out[2]}) |"
        )
        print(
            f"| Bloom filter m={m:,} bits k={k} (mmap) | {build_bloom:.1f} s | {bloom_size / 1e6:.1f} MB | "
            f"{bloom_size / args.count:.2f} | {b_in[0]:.1f} / {b_in[1]:.1f} us | {b_out[0]:.1f} / {b_out[1]:.1f} us | "
            f"{false_positives / len(probe):.4%} measured (target {args.bloom_fp:.2%}) |"
        )


if __name__ == "__main__":
    main()
