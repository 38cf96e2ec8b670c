"""`make bench` / `python -m bench [part ...] [--quick]`: run the benchmarks, write bench/results.md and the chart.

Parts: coldstart, awscalls, api, throughput, cache, processes, sync, reports, batching (default: all). Each runs in its own interpreter, so one part's
imports, moto state and caches never colour another's figures. Figures of parts not run this time are kept
from bench/results.json, with the date they were measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime

from bench.world import ROOT, say

PARTS = ("coldstart", "awscalls", "api", "throughput", "cache", "processes", "sync", "reports", "batching")
RESULTS = ROOT / "bench" / "results.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("parts", nargs="*", help=f"which parts to run: {', '.join(PARTS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller workloads, for trying the harness out")
    args = parser.parse_args(argv)
    parts = args.parts or list(PARTS)
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {sorted(unknown)}; choose from {', '.join(PARTS)}")

    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    work = ROOT / ".bench"
    work.mkdir(exist_ok=True)
    for part in parts:
        out = work / f"{part}.json"
        out.unlink(missing_ok=True)
        say(f"== {part}")
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "bench.parts", part, str(out), *(["--quick"] * args.quick)], cwd=ROOT, check=False
        )
        if done.returncode != 0 or not out.exists():
            say(f"!! {part} failed (exit {done.returncode}); its previous figures are kept")
            continue
        results[part] = {
            "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "seconds": round(time.perf_counter() - started, 1),
            "quick": args.quick,
            **json.loads(out.read_text()),
        }
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")

    from bench import report

    report.write(results, ROOT / "bench")
    say(f"wrote {ROOT / 'bench' / 'results.md'} and {ROOT / 'bench' / 'results.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
