"""Domain events: the one envelope every capability publishes in, and the seam that publishes them.

Events come from the tables' DynamoDB streams, not from extra writes: a change that was committed produces its
events, a rolled-back one produces none, and nothing is lost between the two. Each capability owns the mapping
from a change of its own items to events (`Capability.events` in conveyor/capabilities.py names a
`(Change) -> list[DomainEvent]` function); the webhooks capability consumes the streams and delivers them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@dataclass(frozen=True)
class Change:
    """One committed item change, as a table's stream reports it (images already deserialised to plain Python)."""

    table: str  # the table's logical name in template.yaml, e.g. "JobsTable"
    stream_event_id: str  # stable across stream retries: the basis of idempotent event ids
    at: datetime
    old: dict[str, Any] | None = None
    new: dict[str, Any] | None = None

    @property
    def created(self) -> bool:
        return self.old is None and self.new is not None

    @property
    def removed(self) -> bool:
        return self.new is None and self.old is not None

    def moved(self, attribute: str, to: Any) -> bool:
        """The item's `attribute` became `to` in this change (it was something else, or absent, before)."""
        return (self.new or {}).get(attribute) == to and (self.old or {}).get(attribute) != to

    def key(self) -> str:
        return str((self.new or self.old or {}).get("sk", ""))

    def tenant_id(self) -> str:
        return str((self.new or self.old or {}).get("tenant_id", ""))


@dataclass(frozen=True)
class DomainEvent:
    """`{id: evt_<ULID>, type, timestamp, tenant_id, data}`; `type` is dotted, e.g. `job.completed`."""

    id: str
    type: str
    timestamp: datetime
    tenant_id: str
    data: dict[str, Any] = field(default_factory=dict)

    def envelope(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "timestamp": self.timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "tenant_id": self.tenant_id,
            "data": self.data,
        }


EventMapper = Callable[[Change], list[DomainEvent]]


@dataclass(frozen=True)
class EventType:
    """One entry of the documented catalogue: the type, what it means, the schema of its `data` and a sample.

    A capability's events module (the one `Capability.events` names) lists its types in `CATALOGUE`; the
    webhooks API publishes each as a JSON Schema in the OpenAPI document and sends the sample as a test event."""

    name: str
    description: str
    data: type[BaseModel]
    sample: dict[str, Any] = field(default_factory=dict)


def event_id(change: Change, event_type: str) -> str:
    """A deterministic `evt_<ULID>` for (change, type): time-ordered by the change's time, the same on every
    replay of the stream record, so a redelivered change yields the same event and is delivered once."""
    ms = int(change.at.timestamp() * 1000)
    digest = int.from_bytes(hashlib.sha256(f"{change.stream_event_id}|{event_type}".encode()).digest()[:10], "big")
    value = (ms << 80) | digest
    return "evt_" + "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def event(change: Change, event_type: str, tenant_id: str, data: dict[str, Any]) -> DomainEvent:
    return DomainEvent(event_id(change, event_type), event_type, change.at, tenant_id, data)
