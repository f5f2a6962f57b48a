"""Summarises a py-spy `--format raw` (collapsed stacks) profile of the bench stack.

    .venv/bin/python bench/profile_summary.py bench/results/profile-<scenario>-<ts>.txt [--top 25]

Prints, as a share of the sampled busy time of the gunicorn workers: the hottest frames by
self time, and the project's own functions (accounts/, core/, mfa/, risk/, payments/,
audit/, notifications/) and a few library entry points by inclusive time. Idle samples
(threads waiting for a request in the gthread pool or on the selector) are left out.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

PROJECT = re.compile(r"\((?:/[^)]*/)?(?:accounts|core|mfa|risk|payments|audit|notifications|config)/[^)]*\)")
IDLE = (
    "wait (threading.py",
    "select (selectors.py",
    "_worker (concurrent/futures/thread.py",
    "accept (socket.py",
    "sleep (",
)


def parse(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        stacks.append((frames, int(count)))
    return stacks


def short(frame: str) -> str:
    return re.sub(r"/[^ ]*/(site-packages|lib/python3\.\d+)/", "", re.sub(r"/work/main/", "", frame))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    stacks = parse(args.profile)
    busy = [(f, n) for f, n in stacks if not any(idle in f[-1] for idle in IDLE)]
    total = sum(n for _, n in busy) or 1
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, n in busy:
        self_time[short(frames[-1])] += n
        for frame in set(frames):
            if PROJECT.search(frame) or any(
                key in frame
                for key in ("argon2", "check_password", "render (django/template", "execute (django/db", "jwt")
            ):
                inclusive[short(frame)] += n
    print(f"{total} busy samples ({sum(n for _, n in stacks)} with idle)\n\nself time:")
    for frame, n in self_time.most_common(args.top):
        print(f"  {100 * n / total:5.1f}%  {frame}")
    print("\ninclusive (project code and key library calls):")
    for frame, n in inclusive.most_common(args.top * 2):
        print(f"  {100 * n / total:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
