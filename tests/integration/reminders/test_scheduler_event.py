"""events/scheduler-minute.json, the sample for `sam local invoke SchedulerFunction -e`, drives the real handler."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SAMPLE = Path(__file__).resolve().parents[3] / "events" / "scheduler-minute.json"


def test_the_minute_event_sends_a_reminder_that_just_became_due(
    stack: Any, rapi: Any, contact: Any, appointment: Any, reminders_of: Any, outbox: Any
) -> None:
    # Given a reminder due in about a second: an appointment 2 h from now, reminded 2 h before
    rapi.request("PUT", "/v1/reminder-policy", {"appointment_lead_times": ["PT2H"]})
    contact("c1", email="ada@example.com", channels=["email"])
    starts = (datetime.now(UTC) + timedelta(hours=2, seconds=2)).replace(microsecond=0)
    appointment("a1", starts.isoformat())
    [planned] = reminders_of("a1")
    time.sleep(max(0.0, datetime.fromisoformat(planned["remind_at"]).timestamp() - time.time()) + 0.05)

    # When the schedule fires with the sample event, and the queues are drained
    event = json.loads(SAMPLE.read_text())
    result = stack.invoke("SchedulerFunction", event)
    stack.drain()

    # Then the sweep reported it and the email arrived
    assert event["detail-type"] == "Scheduled Event"
    assert result["sweep_reminders"] == 1
    assert len(outbox.to("ada@example.com")) == 1
    assert reminders_of("a1")[0]["state"] == "sent"
