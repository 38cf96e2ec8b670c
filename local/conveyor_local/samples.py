"""Sample requests shown in the banner and sent by `conveyor demo` (examples only; the runner never depends on them)."""

from __future__ import annotations

from typing import Any

WELCOME_EMAIL: dict[str, Any] = {
    "type": "email.send",
    "payload": {
        "to": ["ada@example.com"],
        "template": "welcome",
        "context": {"name": "Ada", "practice_name": "Riverside Clinic"},
    },
}

REMINDER_IN_30S: dict[str, Any] = {
    "type": "email.send",
    "delay_seconds": 30,
    "payload": {
        "to": ["grace@example.com"],
        "template": "appointment-reminder",
        "context": {"name": "Grace", "subject_name": "Grace", "starts_at_local": "Tuesday 10:00"},
    },
}
