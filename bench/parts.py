"""One benchmark part in this interpreter: `python -m bench.parts PART OUT.json [--quick]`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.world import ROOT


def run(part: str, quick: bool) -> dict:
    if part == "coldstart":
        from bench import coldstart

        return coldstart.run(ROOT, ROOT / ".bench", rounds=7 if quick else 11)
    if part == "awscalls":
        from bench import ledger

        ledger.install()  # before any botocore session exists
        from bench import awscalls

        return awscalls.run(
            emails=100 if quick else 1000,
            trickle=20 if quick else 100,
            reminders=100 if quick else 1000,
            webhooks=100 if quick else 1000,
        )
    if part == "api":
        from bench import api_overhead

        return api_overhead.run(requests=100 if quick else 400)
    if part == "processes":
        from bench import ledger

        ledger.install()  # before any botocore session exists
        from bench import processes

        return processes.run(records=1000 if quick else 5000)
    if part == "sync":
        from bench import ledger

        ledger.install()  # before any botocore session exists
        from bench import sync

        return sync.run(records=500 if quick else 2000)
    if part == "throughput":
        from bench import throughput

        return throughput.run(jobs=200 if quick else 2000)
    if part == "cache":
        from bench import ledger

        ledger.install()
        from bench import cache

        return cache.run()
    if part == "reports":
        from bench import ledger

        ledger.install()
        from bench import reports

        return reports.run(rows=20_000 if quick else 100_000, memory_rows=100_000 if quick else 1_000_000)
    if part == "batching":
        from bench import ledger

        ledger.install()  # before any botocore session exists
        from bench import batching

        return batching.run(jobs=20 if quick else 60)
    raise SystemExit(f"unknown part {part!r}")


if __name__ == "__main__":
    name, out = sys.argv[1], Path(sys.argv[2])
    out.write_text(json.dumps(run(name, "--quick" in sys.argv[3:]), indent=1))
