"""Reminders end to end: appointments created over the API, the one-minute scheduler fired at their due time,
the notification.send jobs run by the worker (half the contacts prefer email (SES), half SMS (SNS)).

Spread over a few tenants (practices), each with its own API key, as a multi-tenant deployment is.
The scheduler handler sweeps "now"; the benchmark moves that clock to the reminders' due minute (as the
reminder tests do with scheduler.run(now)), so the appointments can sit in the future where nothing expires.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

LEAD = "PT2H"
TENANTS = 20  # practices: one partition each (moto's queries walk a whole partition; DynamoDB's do not)
STARTS = datetime(2099, 6, 10, 9, 0, tzinfo=UTC)
CONTACTS = {
    "c-email": {
        "name": "Ada",
        "email": "ada@example.com",
        "phone": "+447700900123",
        "timezone": "UTC",
        "channels": ["email", "sms"],
    },
    "c-sms": {
        "name": "Bo",
        "email": "bo@example.com",
        "phone": "+447700900456",
        "timezone": "UTC",
        "channels": ["sms", "email"],
    },
}


def available(root: Path) -> bool:
    return (root / "layers" / "conveyor" / "conveyor" / "reminders").is_dir()


def run(n: int, *, per_world: int = 250) -> dict[str, Any]:
    """n reminders, in fresh worlds of `per_world` each (moto keeps every stream record it ever wrote, with
    copies of both images: one world of 1,000 reminders grows past 4 GB), their counts added up."""
    from bench import ledger
    from bench.awscalls import _summary

    total, states, reminder_states, elapsed = ledger.Ledger(), Counter(), Counter(), 0.0
    for start in range(0, n, per_world):
        book, job_states, sent, seconds = _one_world(start, min(per_world, n - start))
        total.merge(book)
        states.update(job_states)
        reminder_states.update(sent)
        elapsed += seconds
    assert states.get("completed") == n, f"not every notification job completed: {dict(states)}"
    assert reminder_states.get("sent") == n, f"not every reminder was sent: {dict(reminder_states)}"
    summary = _summary("reminders", n, total, elapsed, states, api_requests=n)
    summary["reminder_states"] = dict(reminder_states)
    summary["note"] = (
        f"{n} appointments over {TENANTS} tenants, one {LEAD} reminder each, in fresh worlds of "
        f"{per_world} (PUT /v1/appointments counted: it is what creates the reminder); contacts and "
        "policies set up beforehand, uncounted"
    )
    return summary


def _one_world(first: int, n: int) -> tuple[Any, Counter, Counter, float]:
    from bench import ledger
    from bench.awscalls import _Client, _drain, _jobs_table, _states, _world

    with _world() as (stack, _):
        import conveyor.scheduler as scheduler_module  # imported once the functions' environment is set

        clients = []
        for t in range(TENANTS):
            tenant = _Client(stack, _reminders_key(f"practice-{t:02d}"))
            for contact_id, body in CONTACTS.items():
                assert tenant.request("PUT", f"/v1/contacts/{contact_id}", body).status in (200, 201)
            assert tenant.request("PUT", "/v1/reminder-policy", {"appointment_lead_times": [LEAD]}).status == 200
            clients.append(tenant)
        started = time.perf_counter()
        with ledger.recording() as book:
            for i in range(first, first + n):
                body = {
                    "contact_id": list(CONTACTS)[i % 2],
                    "subject_name": "Rex",
                    "location": "Main St",
                    "starts_at": (STARTS + timedelta(seconds=i)).isoformat(),
                }
                response = clients[i % TENANTS].request("PUT", f"/v1/appointments/a{i:05d}", body)
                assert response.status in (200, 201), response.body
            due = STARTS + timedelta(seconds=first + n) - timedelta(hours=2) + timedelta(minutes=1)
            real_utcnow = scheduler_module.utcnow
            scheduler_module.utcnow = lambda: due  # the scheduler's clock only: the minute the reminders are due
            try:
                while True:
                    [result] = stack.fire_schedules()
                    _drain(stack)
                    if not result.get("sweep_reminders"):
                        break
            finally:
                scheduler_module.utcnow = real_utcnow
            _drain(stack)
        elapsed = time.perf_counter() - started
        return book, _states(stack, _jobs_table(stack)), _reminder_states(stack), elapsed


def _reminders_key(tenant: str) -> str:
    from bench.world import api_key

    return api_key(tenant, "reminders:read,reminders:write,jobs:read,jobs:write")


def _reminder_states(stack: Any) -> Counter:
    from bench import ledger

    table = next(iter(stack.functions.values())).environment.get("REMINDERS_TABLE")
    found: Counter = Counter()
    if not table:
        return found
    with ledger.paused():
        for page in (
            stack.client("dynamodb")
            .get_paginator("scan")
            .paginate(TableName=table, ProjectionExpression="sk, #s", ExpressionAttributeNames={"#s": "state"})
        ):
            found.update(
                item["state"]["S"] for item in page["Items"] if item["sk"]["S"].startswith("rem#") and "state" in item
            )
    return found
