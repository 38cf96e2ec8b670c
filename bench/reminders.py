"""Reminders end to end: appointments created over the API, the one-minute scheduler fired at their due time,
the notification.send jobs run by the worker (half the contacts prefer email (SES), half SMS (SNS)).

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
STARTS = datetime(2099, 6, 10, 9, 0, tzinfo=UTC)
CONTACTS = {
    "c-email": {"name": "Ada", "email": "ada@example.com", "phone": "+447700900123", "timezone": "UTC",
                "channels": ["email", "sms"]},
    "c-sms": {"name": "Bo", "email": "bo@example.com", "phone": "+447700900456", "timezone": "UTC",
              "channels": ["sms", "email"]},
}


def available(root: Path) -> bool:
    return (root / "layers" / "conveyor" / "conveyor" / "reminders").is_dir()


def run(n: int) -> dict[str, Any]:
    from bench import ledger
    from bench.awscalls import _jobs_table, _states, _summary, _world

    with _world() as (stack, client):
        import conveyor.scheduler as scheduler_module  # imported once the functions' environment is set

        client.key = _reminders_key()
        for contact_id, body in CONTACTS.items():
            assert client.request("PUT", f"/v1/contacts/{contact_id}", body).status in (200, 201)
        assert client.request("PUT", "/v1/reminder-policy", {"appointment_lead_times": [LEAD]}).status == 200
        started = time.perf_counter()
        with ledger.recording() as book:
            for i in range(n):
                body = {"contact_id": list(CONTACTS)[i % 2], "subject_name": "Rex", "location": "Main St",
                        "starts_at": (STARTS + timedelta(seconds=i)).isoformat()}
                response = client.request("PUT", f"/v1/appointments/a{i:05d}", body)
                assert response.status in (200, 201), response.body
            due = STARTS + timedelta(seconds=n) - timedelta(hours=2) + timedelta(minutes=1)
            real_utcnow = scheduler_module.utcnow
            scheduler_module.utcnow = lambda: due  # the scheduler's clock only: the minute the reminders are due
            try:
                while True:
                    [result] = stack.fire_schedules()
                    stack.drain(max_rounds=1000)
                    if not result.get("sweep_reminders"):
                        break
            finally:
                scheduler_module.utcnow = real_utcnow
            while stack.drain(max_rounds=1000):
                pass
        elapsed = time.perf_counter() - started
        states = _states(stack, _jobs_table(stack))
        reminder_states = _reminder_states(stack)
    assert states.get("completed") == n, f"not every notification job completed: {dict(states)}"
    assert reminder_states.get("sent") == n, f"not every reminder was sent: {dict(reminder_states)}"
    summary = _summary("reminders", n, book, elapsed, states, api_requests=n)
    summary["reminder_states"] = dict(reminder_states)
    summary["note"] = (f"{n} appointments, one {LEAD} reminder each (PUT /v1/appointments counted: it is what "
                       "creates the reminder); contacts and the policy are set up beforehand, uncounted")
    return summary


def _reminders_key() -> str:
    from bench.world import TENANT, api_key

    return api_key(TENANT, "reminders:read,reminders:write,jobs:read,jobs:write")


def _reminder_states(stack: Any) -> Counter:
    from bench import ledger

    table = next(iter(stack.functions.values())).environment.get("REMINDERS_TABLE")
    found: Counter = Counter()
    if not table:
        return found
    with ledger.paused():
        for page in stack.client("dynamodb").get_paginator("scan").paginate(
                TableName=table, ProjectionExpression="sk, #s", ExpressionAttributeNames={"#s": "state"}):
            found.update(item["state"]["S"] for item in page["Items"]
                         if item["sk"]["S"].startswith("rem#") and "state" in item)
    return found
