"""Report test fixtures: the `test.numbers` type (numbers_report.py) registered and reset, a reports API client."""

from __future__ import annotations

import pytest
from numbers_report import CALLS  # noqa: F401 - registers test.numbers


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    CALLS.clear()


@pytest.fixture
def reports_api(api_as):
    return api_as("tenant-a", "reports:read,reports:write,jobs:read,reminders:read,webhooks:read")
