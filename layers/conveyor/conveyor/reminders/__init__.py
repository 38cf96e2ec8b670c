"""Reminders: contacts, appointments, medication schedules, and the reminders the scheduler sends for them."""
