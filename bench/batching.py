"""Trickle batching: the dispatcher's stream batching window (template parameter DispatchBatchingWindowSeconds),
what it saves per job against how long a job waits for it.

Email jobs arrive one at a time at a steady rate (a quiet hour's trickle, not a burst), POSTed through the
emulated HTTP API, in a fresh moto world per window. The dispatcher's stream source is polled every 50 ms in real
time, as Lambda's poller reads a shard, and holds records for the window as Lambda does (local/conveyor_local/
event_sources.py); whatever it sends goes straight on to the worker. Per window: every AWS request and Lambda
invocation (bench.ledger), the list price per 1M jobs (bench.pricing), and each job's dispatch wait, from its
POST's answer to the dispatcher invocation that sent it to SQS.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from typing import Any

from bench import ledger
from bench.world import say

EMAIL = {"to": ["ann@example.com"], "template": "welcome", "context": {"name": "Ann"}}
POLL_SECONDS = 0.05


def run(*, jobs: int = 60, interval: float = 0.25, windows: tuple[int, ...] = (0, 2, 5), log: Any = say) -> dict:
    results: dict[str, Any] = {"jobs": jobs, "interval_s": interval}
    for window in windows:
        log(f"trickle batching: {jobs} email jobs, one every {interval} s, dispatcher window {window} s")
        results[f"window-{window}s"] = _trickle(jobs, interval, window)
    return results


def _trickle(n: int, interval: float, window: int) -> dict[str, Any]:
    from bench.awscalls import _jobs_table, _states, _summary, _world
    from conveyor_local.event_sources import StreamSource

    with _world({"DispatchBatchingWindowSeconds": str(window)}) as (stack, client):
        dispatcher = next(
            s for s in stack.sources if isinstance(s, StreamSource) and s.function_id == "DispatcherFunction"
        )
        others = [s for s in stack.sources if s is not dispatcher]
        answered: deque[float] = deque()  # when each POST was answered, oldest first (the stream keeps that order)
        waits: list[float] = []
        started = time.perf_counter()
        next_post = time.monotonic()
        with ledger.recording() as book:
            while len(waits) < n:
                if len(answered) + len(waits) < n and time.monotonic() >= next_post:
                    response = client.request("POST", "/v1/jobs", {"type": "email.send", "payload": EMAIL})
                    assert response.status == 202, response.body
                    answered.append(time.monotonic())
                    next_post += interval
                if delivered := stack.pump(dispatcher, hold=True):
                    sent = time.monotonic()
                    waits += [sent - answered.popleft() for _ in range(delivered)]
                    for source in others:  # the worker (and the events function) take what was sent
                        while stack.pump(source):
                            pass
                time.sleep(POLL_SECONDS)
        elapsed = time.perf_counter() - started
        states = _states(stack, _jobs_table(stack))
    assert states.get("completed") == n, f"not every job completed: {dict(states)}"
    summary = _summary(f"trickle-window-{window}s", n, book, elapsed, states, api_requests=n)
    ordered = sorted(waits)
    summary["window_s"] = window
    summary["dispatch_wait_s"] = {
        "p50": round(statistics.median(ordered), 2),
        "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
        "max": round(ordered[-1], 2),
    }
    return summary
