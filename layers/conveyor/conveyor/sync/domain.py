"""CRM sync's domain: connections, sync runs, the watermark rule, and how a CRM person becomes a contact. Pure.

Watermark (delta sync): the highest delta value a completed sync saw, capped at the time that sync started,
minus a lookback (default 5 minutes), floored to the whole second; the next delta asks the CRM for records
changed at or after it (`>=`). It moves only when a sync process ends `completed` (never on failed, cancelled
or completed_with_errors), and never backwards, so a failed sync loses nothing, and records sharing the
watermark's second are read again (and change nothing: an older-or-equal `updated_at` never overwrites a newer
one).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from conveyor.connectors.base import ContactData
from conveyor.notify import ID_PATTERN, SourcedContact

DEFAULT_LOOKBACK = timedelta(minutes=5)
BATCH_SIZE = 100  # records per batch job (notify.sync_contacts writes at most 100 at a time)
COALESCE_SECONDS = 2  # webhook changes to one record within this window are fetched once
REFRESH_MARGIN = timedelta(minutes=5)  # OAuth access tokens are refreshed this long before they expire
LEASE_SECONDS = 30  # a refresh holds the connection's token lease at most this long
CHECK_BACK = timedelta(minutes=1)  # a running sync's connection is looked at again by the sweep this often
CLAIM_TIMEOUT = timedelta(minutes=5)  # a claim to start a sync that never got its process is stale after this


class ConnectionState(StrEnum):
    ACTIVE = "active"
    REAUTH_REQUIRED = "reauth_required"  # the CRM refused the refresh token: a user must connect again


class SyncMode(StrEnum):
    INITIAL = "initial"
    DELTA = "delta"


class RunState(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Connection:
    id: str
    tenant_id: str
    connector: str
    auth: str  # api_token | oauth
    base_url: str
    token_url: str
    state: ConnectionState
    created_at: datetime
    updated_at: datetime
    schedule_minutes: int = 60
    default_timezone: str = "UTC"
    default_region: str = "US"
    field_map: dict[str, str] = field(default_factory=dict)
    lookback_seconds: int = int(DEFAULT_LOOKBACK.total_seconds())
    watermark: datetime | None = None
    running: str | None = None  # the process id of the sync that runs (or "claim:<token>" while it starts)
    running_mode: str | None = None
    next_delta_at: datetime | None = None
    reauth_reason: str | None = None
    last_sync: dict[str, Any] | None = None

    @property
    def lookback(self) -> timedelta:
        return timedelta(seconds=self.lookback_seconds)


@dataclass(frozen=True)
class SyncRun:
    process_id: str
    connection_id: str
    mode: SyncMode
    state: RunState
    started_at: datetime
    since: datetime | None = None
    finished_at: datetime | None = None
    counts: dict[str, int] | None = None
    watermark_after: datetime | None = None


def next_watermark(
    current: datetime | None, max_seen: datetime | None, started_at: datetime, lookback: timedelta
) -> datetime | None:
    """The watermark after a completed sync (see the module docstring); None while nothing was ever seen."""
    if max_seen is None:
        return current
    candidate = (min(max_seen, started_at) - lookback).replace(microsecond=0)  # whole seconds: see above
    return candidate if current is None or candidate > current else current


def delta_since(connection: Connection) -> datetime | None:
    return connection.watermark


_ID = re.compile(ID_PATTERN)


def contact_id(connection_id: str, external_id: str) -> str:
    """The contact a CRM record becomes: stable per (connection, record), a valid notify contact id."""
    plain = f"{connection_id}:{external_id}"
    if _ID.match(plain):
        return plain
    return f"{connection_id}:h{hashlib.sha256(external_id.encode()).hexdigest()[:32]}"


def to_sourced(connection: Connection, record: ContactData) -> SourcedContact:
    return SourcedContact(
        id=contact_id(connection.id, record.external_id),
        source=f"crm:{connection.id}",
        updated_at=record.updated_at,
        name=(record.name or record.email or record.external_id)[:200],
        timezone=record.timezone or connection.default_timezone,
        email=record.email if record.email and len(record.email) <= 254 else None,
        phone=record.phone,
        deleted=record.deleted,
    )


def run_state(process_state: str) -> RunState | None:
    """A sync run's state from its process's (None while it runs)."""
    try:
        state = RunState(process_state)
    except ValueError:
        return None
    return None if state is RunState.RUNNING else state
