"""Requests per `GET /v1/queues`, with and without the shared cache, for 1 and for 20 callers polling for a minute.

Each caller polls every 5 s (what a dashboard tab or `watch conveyor queues` does), so a minute is 12 requests per
caller. Each caller is served by a container of its own (the worst case for the per-container layer). Time is simulated: the cache's clock advances 5 s per round, so the measure does not depend on the machine.
"Without" is the same code with a cache that always computes (what GET /v1/queues did before the cache).
"""

from __future__ import annotations

from typing import Any

from bench import ledger
from bench.world import api_key, moto_stack, quiet_functions, say

POLL_SECONDS, MINUTE = 5, 60


class _Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class _NoCache:
    """GET /v1/queues as it was: every request computes."""

    def __init__(self, table: str) -> None:
        self.table = table

    def get_or_set(self, scope: str, name: str, compute: Any, **_: Any) -> Any:
        from conveyor.platform.cache import Status

        return compute(), Status("bypass")

    def bump(self, scope: str, tag: str) -> None:
        pass


def _one(callers: int, cached: bool) -> dict[str, Any]:
    from conveyor.platform import cache

    with moto_stack() as stack, quiet_functions():
        keys = [api_key(f"tenant-{i}", "admin") for i in range(callers)]
        table = stack.template.physical["CacheTable"]
        clock = _Clock()
        # each caller served by a container of its own (the worst case for the per-container layer)
        containers = [cache.Cache(table, clock=clock) if cached else _NoCache(table) for _ in keys]
        headers = [{"authorization": f"Bearer {key}"} for key in keys]
        for h in headers:  # authorizer cache warm, as it is after the first minute
            stack.gateway.handle("GET", "/health", h, b"")
        with ledger.recording() as seen:
            for _ in range(MINUTE // POLL_SECONDS):
                for h, container in zip(headers, containers, strict=True):
                    cache._shared = container  # type: ignore[assignment]
                    answer = stack.gateway.handle("GET", "/v1/queues", h, b"")
                    assert answer.status == 200, answer.body
                clock.now += POLL_SECONDS
        cache.reset()
    requests = callers * MINUTE // POLL_SECONDS
    sqs = seen.requests_of("sqs")
    dynamodb = seen.requests_of("dynamodb")
    lam = seen.requests_of("lambda")
    return {
        "callers": callers,
        "cached": cached,
        "requests": requests,
        "sqs": sqs,
        "dynamodb": dynamodb,
        "lambda": lam,
        "sqs_per_request": round(sqs / requests, 2),
        "dynamodb_per_request": round(dynamodb / requests, 2),
        "lambda_per_request": round(lam / requests, 2),
    }


def run() -> dict[str, Any]:
    rows = []
    for callers in (1, 20):
        for cached in (False, True):
            row = _one(callers, cached)
            say(f"  {callers:>2} caller(s), cache {'on ' if cached else 'off'}: {row}")
            rows.append(row)
    return {"rows": rows}
