"""Process test helpers: the `test.fanout` type (fanout.py), a processes API client, serialised DynamoDB."""

from __future__ import annotations

import pytest
from fanout import RUNS


@pytest.fixture(autouse=True)
def _reset_runs() -> None:
    RUNS.clear()


@pytest.fixture
def processes_api(api_as):
    return api_as("tenant-a", "processes:read,processes:write")
