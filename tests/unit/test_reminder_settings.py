"""Reminders need REMINDERS_TABLE; without it their storage says so by name (other functions do not care)."""

from __future__ import annotations

import pytest


def test_reminder_storage_names_the_missing_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from conveyor.platform.settings import SettingsError, load_settings
    from conveyor.reminders import repository

    settings = load_settings(
        {"JOBS_TABLE": "jobs", "API_KEYS_TABLE": "keys", "EMAIL_FROM": "a@example.com", "QUEUES": "{}"}
    )
    monkeypatch.setattr(repository, "get_settings", lambda: settings)

    with pytest.raises(SettingsError, match="REMINDERS_TABLE"):
        repository.get_appointment("tenant-a", "a1")
