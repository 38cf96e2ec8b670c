"""Local stack throughput: a burst of jobs through `make run` (the local runner), enqueue -> completed."""

from __future__ import annotations

from typing import Any

from bench.world import ROOT


def available() -> bool:
    return (ROOT / "local" / "conveyor_local" / "__main__.py").exists()


def run(*, jobs: int = 2000) -> dict[str, Any]:
    if not available():
        return {"pending": "the local runner (`make run`, local/conveyor_local/__main__.py) is not on this branch yet"}
    raise NotImplementedError
