"""Reminders: appointments, medication schedules, and the reminders the scheduler plans and triggers for them.
Reminders only plan and trigger: contacts, channels and delivery are notify's (through its public API).

Modules: domain (appointments, schedules, reminders, states) · timing (lead times, quiet hours, doses: pure) ·
repository (storage, every transition conditional) · planning (plan and re-check reminders) · service (use
cases) · api (/v1/appointments, /v1/medication-schedules, /v1/reminders, /v1/reminder-policy) · sweeps (the
one-minute sweep) · jobs (the send, run by notify's notification.send on a reminder's behalf).
"""
