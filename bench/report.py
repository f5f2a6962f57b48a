"""Prints a results JSON of the bench as markdown (for bench/README.md).

.venv/bin/python bench/report.py bench/results/<timestamp>.json
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location("bench_runner", Path(__file__).with_name("runner.py"))
assert _spec is not None and _spec.loader is not None
runner = importlib.util.module_from_spec(_spec)
sys.modules["bench_runner"] = runner
_spec.loader.exec_module(runner)


def main() -> None:
    path = Path(sys.argv[1])
    r = json.loads(path.read_text())
    m, c = r["machine"], r["config"]
    print(f"`{path.name}` (git {r['git']}), {r['started_at'][:16].replace('T', ' ')} UTC.")
    print(
        f"Machine: {m['nproc']} x {m['cpu_model']}, {m['ram_gib']} GiB RAM, Linux {m['kernel']}, "
        f"Python {m['python']}; load average before the run {' '.join(m['loadavg'])}. "
        f"gunicorn {c['gunicorn']['workers']} workers x {c['gunicorn']['threads']} threads, "
        f"{c['duration_s']} s per scenario after {c['warmup_s']} s warm-up, {c['connections']} connections.\n"
    )
    print(runner.table(r["scenarios"]))
    census = r.get("census") or {}
    if census and "failed" not in census:
        print("\nPer request, in process (census):\n")
        print("| request | status | SQL | Redis round trips (commands) | CPU ms |\n|---|---|---|---|---|")
        for name, v in census.items():
            if "status" in v:
                trips = v.get("redis_round_trips", "?")
                print(
                    f"| {name} | {v['status']} | {v['sql_queries']} | {trips} ({v['redis_commands']}) | {v['cpu_ms']} |"
                )
            else:
                print(f"| {name} | | | | {v['cpu_ms']} |")
    for name, v in r["scenarios"].items():
        if "argon2" in v:
            a = v["argon2"]
            line = (
                f"\nargon2 ({name}): {a['params']}, {a['ms_per_verify_cpu']} ms CPU per verification alone "
                f"({a['verifies_per_cpu_s']}/s); {name} per server core = "
                f"{100 * v['fraction_of_argon2_ceiling']:.0f}% of it"
            )
            if a.get("concurrent_verifies_per_cpu_s"):
                line += (
                    f"; {a['concurrent_verifies_per_cpu_s']}/s per CPU-second with {a['concurrent_threads']} at "
                    f"once, {100 * (v.get('fraction_of_concurrent_argon2') or 0):.0f}% of that"
                )
            print(line + ".")
    if r.get("ledger"):
        ledger = r["ledger"]
        print(f"\nLedger after the payments: consistent = {ledger['consistent']}, {ledger['payments_by_status']}.")
    if r.get("targets"):
        print("\nTargets (per server core):\n\n" + "\n".join(f"- {line}" for line in r["targets"]))


if __name__ == "__main__":
    main()
