"""Reminders: appointments, medication schedules, and the reminders the scheduler plans and triggers for them.
Reminders only plan and trigger: contacts, channels and delivery are notify's (through its public API).

Modules: domain (appointments, schedules, reminders, states) · timing (lead times, quiet hours, doses: pure) ·
repository (storage, every transition conditional) · planning (plan and re-check reminders) · service (use
cases) · api (/v1/appointments, /v1/medication-schedules, /v1/reminders, /v1/reminder-policy) · sweeps (the
one-minute sweep) · jobs (the send, run by notify's notification.send on a reminder's behalf).
"""

from __future__ import annotations

from typing import Any


# --- public read API (reports, dashboards): thin and lazy, so importing a reminders module stays cheap ----------
def list_reminders(tenant_id: str, **query: Any) -> Any:
    """A page of the tenant's reminders by send time: (reminders, next cursor). See service.list_reminders."""
    from conveyor.reminders import service

    return service.list_reminders(tenant_id, **query)


def find_appointment(tenant_id: str, appointment_id: str) -> Any:
    """The appointment, or None."""
    from conveyor.platform.errors import NotFound
    from conveyor.reminders import service

    try:
        return service.get_appointment(tenant_id, appointment_id)[0]
    except NotFound:
        return None
