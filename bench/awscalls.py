"""AWS requests, Lambda invocations and list-price cost per job, end to end under moto.

Scenarios (each in a fresh moto world built from template.yaml, as tests/conftest.py builds it):
  email-burst    N email jobs POSTed through the emulated HTTP API (authorizer and its cache included), then the
                 local stack's event sources pumped until idle (stack.drain(): dispatcher per stream batch, worker
                 per SQS batch): batches are as full as a burst makes them, the best case.
  email-trickle  jobs one at a time, each drained before the next: every batch holds one record, the worst case
                 (what a quiet hour looks like).
  reminders      N appointment reminders (when the reminders capability is present): appointments created over
                 the API, the scheduler fired once they are due, the stack drained.
Every AWS request is counted by bench.ledger; Lambda's own requests (SQS receives and deletes of the event source
mapping, stream reads) are counted apart from our code's.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from bench import ledger, pricing
from bench.world import ROOT, api_key, moto_stack, quiet_functions, say

EMAIL = {"to": ["ann@example.com"], "template": "welcome", "context": {"name": "Ann", "practice_name": "Oak Vets"}}


class _Client:
    """HTTP API requests through the emulated gateway, as tests/conftest.py's Api does."""

    def __init__(self, stack: Any, key: str) -> None:
        self.stack, self.key = stack, key

    def request(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"content-type": "application/json", "authorization": f"Bearer {self.key}"}
        data = json.dumps(body).encode() if body is not None else b""
        return self.stack.gateway.handle(method, path, headers, data)


def _drain(stack: Any) -> int:
    """Run the event sources until idle, streams first and each queue until empty, as Lambda's pollers keep up.

    Batches are the same as stack.drain()'s; only the order differs, so no queue builds a deep backlog:
    moto's ReceiveMessage slows down with queue depth (~1 s per call at 2,000 messages), which would only
    measure the emulator.
    """
    from conveyor_local.event_sources import SqsSource

    total = 0
    while True:
        moved = sum(stack.pump(source) for source in stack.sources if not isinstance(source, SqsSource))
        for source in stack.sources:
            if isinstance(source, SqsSource):
                while delivered := stack.pump(source):
                    moved += delivered
        total += moved
        if not moved:
            return total


def _states(stack: Any, table: str) -> Counter:
    with ledger.paused():
        found: Counter = Counter()
        pages = (
            stack.client("dynamodb")
            .get_paginator("scan")
            .paginate(TableName=table, ProjectionExpression="#s", ExpressionAttributeNames={"#s": "state"})
        )
        for page in pages:
            found.update(item["state"]["S"] for item in page["Items"] if "state" in item)
        return found


@contextlib.contextmanager
def _world(parameters: dict[str, str] | None = None) -> Iterator[tuple[Any, _Client]]:
    """A fresh moto world, functions warm, every invocation recorded; the harness restored afterwards."""
    import conveyor_local.stack as stack_module
    from conveyor_local.lambdas import load_handler

    real_invoke = stack_module.invoke
    with moto_stack(parameters=parameters) as stack, quiet_functions() as sink:
        for spec in stack.functions.values():
            load_handler(spec)  # warm: handler time below is per warm invocation; cold starts are bench.coldstart's
        stack_module.invoke = ledger.wrap_invoke(real_invoke, sink)
        try:
            yield stack, _Client(stack, api_key())
        finally:
            stack_module.invoke = real_invoke


def email_burst(n: int) -> dict[str, Any]:
    return _email_jobs("email-burst", n, drain_each=False)


def email_trickle(n: int) -> dict[str, Any]:
    return _email_jobs("email-trickle", n, drain_each=True)


def _email_jobs(name: str, n: int, *, drain_each: bool) -> dict[str, Any]:
    """n email jobs end to end: all enqueued then drained (a burst), or each drained before the next (a trickle)."""
    with _world() as (stack, client):
        started = time.perf_counter()
        with ledger.recording() as book:
            for _ in range(n):
                response = client.request("POST", "/v1/jobs", {"type": "email.send", "payload": EMAIL})
                assert response.status == 202, response.body
                if drain_each:
                    _drain(stack)
            _drain(stack)
        elapsed = time.perf_counter() - started
        states = _states(stack, _jobs_table(stack))
    assert states.get("completed") == n, f"not every job completed: {dict(states)}"
    return _summary(name, n, book, elapsed, states, api_requests=n)


def email_batch(n: int, *, keyed: bool = False, per_request: int = 100) -> dict[str, Any]:
    """n email jobs enqueued `per_request` to a POST /v1/jobs/batch (each with its own idempotency_key if
    `keyed`: claim+job pairs in transactions; without: BatchWriteItem, 25 to a request), then drained."""
    name = "email-batch-keyed" if keyed else "email-batch"
    with _world() as (stack, client):
        started = time.perf_counter()
        with ledger.recording() as book:
            for start in range(0, n, per_request):
                items = [
                    {"type": "email.send", "payload": EMAIL} | ({"idempotency_key": f"bench-{i}"} if keyed else {})
                    for i in range(start, min(n, start + per_request))
                ]
                response = client.request("POST", "/v1/jobs/batch", {"items": items})
                assert response.status == 200, response.body
                assert {r["status"] for r in response.json()["items"]} == {"created"}, response.body[:500]
            _drain(stack)
        elapsed = time.perf_counter() - started
        states = _states(stack, _jobs_table(stack))
    assert states.get("completed") == n, f"not every job completed: {dict(states)}"
    return _summary(name, n, book, elapsed, states, api_requests=-(-n // per_request))


# --- per job -----------------------------------------------------------------------------------------------
def _summary(
    name: str, n: int, book: ledger.Ledger, elapsed: float, states: Counter, *, api_requests: int
) -> dict[str, Any]:
    ours = [c for c in {c for c, _, _ in book.requests} if c != "esm"]
    per_job = lambda value: round(value / n, 4)  # noqa: E731
    ddb_ops = Counter({op: k for (c, s, op), k in book.requests.items() if s == "dynamodb" and c != "esm"})
    sqs_ours = {op: k for (c, s, op), k in book.requests.items() if s == "sqs" and c != "esm"}
    esm = {f"{s}.{op}": k for (c, s, op), k in book.requests.items() if c == "esm"}
    esm_sqs_billed = (
        book.requests_of("sqs", "ReceiveMessage", "esm")
        - book.empty_receives
        + book.requests_of("sqs", "DeleteMessageBatch", "esm")
        + book.requests_of("sqs", "DeleteMessage", "esm")
    )
    functions: dict[str, dict[str, Any]] = {}
    for function in sorted({i.function for i in book.invocations}):
        runs = [i for i in book.invocations if i.function == function]
        functions[function] = {
            "invocations": len(runs),
            "per_job": per_job(len(runs)),
            "records_per_invocation": round(statistics.mean(i.records for i in runs), 2),
            "mean_ms": round(statistics.mean(i.ms for i in runs), 2),
            "p95_ms": round(sorted(i.ms for i in runs)[int(0.95 * (len(runs) - 1))], 2),
            "billed_ms": sum(max(1, int(-(-i.ms // 1))) for i in runs),
            "log_bytes": sum(i.log_bytes for i in runs),
        }
    figures = {
        "jobs": n,
        "elapsed_s": round(elapsed, 1),
        "states": dict(states),
        "api_requests_per_job": per_job(api_requests),
        "dynamodb": {
            "writes_per_job": per_job(sum(book.items_written[c] for c in ours)),
            "write_requests_per_job": per_job(sum(k for op, k in ddb_ops.items() if op in ledger.WRITES)),
            "wru_per_job": per_job(sum(book.wru[c] for c in ours)),
            "gsi_wru_per_job": per_job(sum(book.gsi_wru[c] for c in ours)),
            "reads_per_job": per_job(sum(k for op, k in ddb_ops.items() if op in ledger.READS)),
            "rru_per_job": per_job(sum(book.rru[c] for c in ours)),
            "operations": dict(ddb_ops),
            "by_function": {
                c: {
                    "items_written": per_job(book.items_written[c]),
                    "wru": per_job(book.wru[c]),
                    "rru": per_job(book.rru[c]),
                }
                for c in sorted(ours)
            },
            "item_bytes": {
                op: {"mean": round(statistics.mean(v)), "max": max(v)} for op, v in book.item_sizes.items() if v
            },
        },
        "sqs": {
            "ours_per_job": per_job(sum(sqs_ours.values())),
            "ours": sqs_ours,
            "esm_billed_per_job": per_job(esm_sqs_billed),
            "esm_empty_receives": book.empty_receives,
            "messages_per_request": {
                f"{c}.{op}": round(m / max(1, book.requests_of("sqs", op, c)), 2)
                for (c, op), m in book.sqs_messages.items()
            },
        },
        "esm_requests": esm,
        "ses_per_job": per_job(book.requests_of("sesv2")),
        "kms_per_job": per_job(book.requests_of("kms")),
        "sns_per_job": per_job(book.requests_of("sns")),
        "lambda": functions,
        "log_bytes_per_job": per_job(sum(i.log_bytes for i in book.invocations)),
        "other_requests": {
            f"{s}.{op}": k
            for (c, s, op), k in book.requests.items()
            if c != "esm" and s not in ("dynamodb", "sqs", "sesv2", "sns")
        },
    }
    figures["cost"] = pricing.cost_per_million(figures)
    return {"scenario": name, **figures}


def run(
    *, emails: int = 1000, trickle: int = 100, reminders: int = 1000, webhooks: int = 1000, log: Any = say
) -> dict[str, Any]:
    ledger.install()
    results = {}
    log(f"aws requests: {emails} email jobs (burst)")
    results["email-burst"] = email_burst(emails)
    log(f"aws requests: {emails} email jobs by POST /v1/jobs/batch (100 to a request, without and with keys)")
    results["email-batch"] = email_batch(emails)
    results["email-batch-keyed"] = email_batch(emails, keyed=True)
    log(f"aws requests: {trickle} email jobs (one at a time)")
    results["email-trickle"] = email_trickle(trickle)
    from bench import webhooks as webhook_bench

    log(f"aws requests: {webhooks} events delivered to one webhook subscription")
    results["webhooks"] = webhook_bench.run(webhooks, _world, _drain, _summary)
    from bench import reminders as reminder_bench

    if reminder_bench.available(ROOT):
        log(f"aws requests: {reminders} reminders")
        results["reminders"] = reminder_bench.run(reminders)
    else:
        results["reminders"] = {"pending": "the reminders capability is not on this branch yet"}
    return results


def _jobs_table(stack: Any) -> str:
    return next(iter(stack.functions.values())).environment["JOBS_TABLE"]
