"""API keys: `cvk_<key id><secret>`. Only the SHA-256 of the whole key is stored, next to its tenant and scopes.

Table (template.yaml `ApiKeysTable`): pk key_id; `expires_at` is the TTL attribute, also checked on every read.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from datetime import timedelta

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UnicodeSetAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import DoesNotExist
from pynamodb.models import Model

from conveyor.platform.clock import utcnow
from conveyor.platform.dynamo import bind, is_expired
from conveyor.platform.errors import InvalidInput, NotFound

PREFIX = "cvk_"
KEY_ID_LENGTH = 12
SECRET_LENGTH = 40
_ALPHABET = string.ascii_lowercase + string.digits

# Scopes a key can hold. `admin` implies every other scope of its tenant; `platform` (acting on shared
# infrastructure for every tenant, e.g. pausing a queue) is never implied and must be granted explicitly.
SCOPES = frozenset(
    {
        "jobs:read",
        "jobs:write",
        "reminders:read",
        "reminders:write",
        "processes:read",
        "processes:write",
        "webhooks:read",
        "webhooks:write",
        "sync:read",
        "sync:write",
        "reports:read",
        "reports:write",
        "admin",
        "platform",
    }
)
ADMIN = "admin"
PLATFORM = "platform"


class ApiKeyRecord(Model):
    class Meta:
        table_name = None

    key_id = UnicodeAttribute(hash_key=True)
    key_hash = UnicodeAttribute()
    tenant_id = UnicodeAttribute()
    scopes = UnicodeSetAttribute()
    name = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    expires_at = NumberAttribute(null=True)
    revoked_at = UTCDateTimeAttribute(null=True)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a tenant and what its key may do."""

    tenant_id: str
    scopes: frozenset[str]
    key_id: str

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or (ADMIN in self.scopes and scope != PLATFORM)


def _keys(table: str | None = None) -> type[ApiKeyRecord]:
    if table is None:
        from conveyor.platform.settings import get_settings

        table = get_settings().api_keys_table
    return bind(ApiKeyRecord, table)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def key_id_of(key: str) -> str | None:
    body = key[len(PREFIX) :] if key.startswith(PREFIX) else ""
    if len(body) != KEY_ID_LENGTH + SECRET_LENGTH or not all(c in _ALPHABET for c in body):
        return None
    return body[:KEY_ID_LENGTH]


def create(
    tenant_id: str,
    scopes: set[str],
    *,
    name: str | None = None,
    expires_in_days: int | None = None,
    table: str | None = None,
    key: str | None = None,
) -> tuple[str, ApiKeyRecord]:
    """Mint a key. The plaintext is returned once and never stored. `expires_in_days`: None never expires; any
    number is taken literally, so 0 (or less) is a key that is already expired (0 used to mean "never").

    `key` stores a given, well-formed key instead of a random one: only for fixtures (the local stack's key for the
    sample events), never for a real tenant."""
    unknown = set(scopes) - SCOPES
    if not tenant_id or not scopes or unknown:
        raise InvalidInput(f"need a tenant and scopes from {sorted(SCOPES)}; unknown: {sorted(unknown)}")
    if key is None:
        key = PREFIX + _random(KEY_ID_LENGTH) + _random(SECRET_LENGTH)
    key_id = key_id_of(key)
    if key_id is None:
        raise InvalidInput(f"an API key is {PREFIX} + {KEY_ID_LENGTH + SECRET_LENGTH} lowercase letters or digits")
    now = utcnow()
    record = _keys(table)(
        key_id,
        key_hash=_digest(key),
        tenant_id=tenant_id,
        scopes=set(scopes),
        name=name,
        created_at=now,
        expires_at=int((now + timedelta(days=expires_in_days)).timestamp()) if expires_in_days is not None else None,
    )
    record.save(condition=ApiKeyRecord.key_id.does_not_exist())
    return key, record


def list_keys(tenant_id: str | None = None, *, table: str | None = None) -> list[ApiKeyRecord]:
    """Every API key (of one tenant), oldest first: the operator's `conveyor keys list`. A scan, so never on a
    request path; the table's session items (no key hash) are left out."""
    model = _keys(table)
    condition = model.key_hash.exists()
    if tenant_id:
        condition &= model.tenant_id == tenant_id
    return sorted(model.scan(condition), key=lambda record: record.created_at)


def revoke(key_or_id: str, *, table: str | None = None) -> ApiKeyRecord:
    key_id = key_id_of(key_or_id) or key_or_id
    try:
        record = _keys(table).get(key_id)
    except DoesNotExist:
        raise NotFound(f"no API key {key_id!r}") from None
    record.update(actions=[ApiKeyRecord.revoked_at.set(utcnow())])
    return record


def authenticate(presented: str | None) -> Principal | None:
    """The principal for a presented key (an `Authorization: Bearer ...` value or the bare key), or None."""
    if not presented:
        return None
    key = presented.strip()
    if key[:7].lower() == "bearer ":
        key = key[7:].strip()
    key_id = key_id_of(key)
    if key_id is None:
        return None
    record = _active(key_id)
    if record is None or not hmac.compare_digest(record.key_hash, _digest(key)):
        return None
    return Principal(tenant_id=record.tenant_id, scopes=frozenset(record.scopes), key_id=key_id)


def principal_of(key_id: str) -> Principal | None:
    """The principal of a key by its id, while the key is neither revoked nor expired (a dashboard session
    holds only the key's id: every request re-reads the key, so revoking it ends the session)."""
    record = _active(key_id)
    if record is None:
        return None
    return Principal(tenant_id=record.tenant_id, scopes=frozenset(record.scopes), key_id=key_id)


def _active(key_id: str) -> ApiKeyRecord | None:
    try:
        record = _keys().get(key_id)
    except DoesNotExist:
        return None
    if record.revoked_at is not None:
        return None
    return None if is_expired(record.expires_at, utcnow()) else record
