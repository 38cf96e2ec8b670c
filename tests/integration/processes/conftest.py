"""Process test helpers: the `test.fanout` type (fanout.py), a processes API client, serialised DynamoDB."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.client import BaseClient
from fanout import RUNS


@pytest.fixture(autouse=True)
def _reset_runs() -> None:
    RUNS.clear()


@pytest.fixture
def processes_api(api_as):
    return api_as("tenant-a", "processes:read,processes:write")


@pytest.fixture
def atomic_dynamodb(monkeypatch: pytest.MonkeyPatch) -> threading.Lock:
    """Each DynamoDB request applied atomically, as DynamoDB does (moto does not lock between threads). A
    read-modify-write between two requests still interleaves with other threads, so lost updates still show."""
    lock = threading.Lock()
    original = BaseClient._make_api_call

    def atomic(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if self.meta.service_model.service_name == "dynamodb":
            with lock:
                return original(self, operation, params)
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", atomic)
    return lock
