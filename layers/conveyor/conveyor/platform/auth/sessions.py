"""Browser sessions for the dashboard: an API key pasted once becomes a signed, expiring session cookie.

Invariants:
- The cookie is `v1.<session id>.<key id>.<expires unix>.<HMAC-SHA256>`; the HMAC key is the deployment's
  session secret (template.yaml `DashboardSessionSecret`, a Secrets Manager secret generated at deploy time and
  read once per process). A cookie whose signature, shape or expiry is wrong is refused before any read.
- A session is also an item in the API keys table (`key_id` = "session#<id>", never a key id: those have no
  `#`), so signing out ends it on the server too; its `expires_at` is the table's TTL and is checked on read.
- Every request re-reads the API key (`keys.principal_of`): revoking or expiring the key ends its sessions
  at once, and the session never outlives the key.
- The key itself is never stored, in the cookie or anywhere else; only its id.
- CSRF tokens are HMACs of the session id (a form can only carry one the server rendered for that session);
  the sign-in form's token is an HMAC of a random pre-session nonce kept in its own cookie.
- One-time sign-in links (for `make run`'s banner) are random tokens stored hashed, valid one minute, and
  consumed by a conditional delete: two clicks cannot both sign in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import DeleteError, DoesNotExist
from pynamodb.models import Model

from conveyor.platform.auth import keys
from conveyor.platform.auth.keys import Principal
from conveyor.platform.dynamo import bind
from conveyor.platform.settings import SettingsError, get_settings

SESSION_LIFETIME = timedelta(hours=8)
LINK_LIFETIME = timedelta(minutes=1)
SESSION_PREFIX, LINK_PREFIX = "session#", "signin#"
VERSION = "v1"


class SessionRecord(Model):
    """A dashboard session (or a pending one-time sign-in link) in the API keys table."""

    class Meta:
        table_name = None

    key_id = UnicodeAttribute(hash_key=True)  # "session#<id>" or "signin#<sha256 of the link token>"
    api_key_id = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    expires_at = NumberAttribute()  # the table's TTL attribute


@dataclass(frozen=True)
class Session:
    id: str
    principal: Principal
    expires_at: datetime
    cookie: str

    @property
    def csrf_token(self) -> str:
        return csrf_token(self.id)


def _table() -> type[SessionRecord]:
    return bind(SessionRecord, get_settings().api_keys_table)


@cache
def _secret() -> bytes:
    """The deployment's session secret (Secrets Manager), read once per process, on the first dashboard request."""
    name = get_settings().dashboard_session_secret
    if not name:
        raise SettingsError("DASHBOARD_SESSION_SECRET is not set: the dashboard cannot sign sessions")
    from conveyor.platform.aws import client

    value = str(client("secretsmanager").get_secret_value(SecretId=name)["SecretString"])
    if len(value) < 32:
        raise SettingsError("the dashboard session secret is shorter than 32 characters")
    return value.encode()


def _mac(*parts: str) -> str:
    digest = hmac.new(_secret(), "|".join(parts).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _now() -> datetime:
    return datetime.now(UTC)


# --- starting a session -----------------------------------------------------------------------------
def start(presented_key: str) -> Session | None:
    """Sign in with an API key (as pasted). None if the key is unknown, revoked or expired."""
    principal = keys.authenticate(presented_key)
    return None if principal is None else _start(principal)


def _start(principal: Principal) -> Session:
    now = _now()
    expires = now + SESSION_LIFETIME
    session_id = secrets.token_urlsafe(18)
    _table()(
        SESSION_PREFIX + session_id,
        api_key_id=principal.key_id,
        created_at=now,
        expires_at=int(expires.timestamp()),
    ).save(condition=SessionRecord.key_id.does_not_exist())
    return Session(session_id, principal, expires, _cookie(session_id, principal.key_id, expires))


def _cookie(session_id: str, key_id: str, expires: datetime) -> str:
    stamp = str(int(expires.timestamp()))
    return ".".join((VERSION, session_id, key_id, stamp, _mac(VERSION, session_id, key_id, stamp)))


# --- every request ----------------------------------------------------------------------------------
def resume(cookie: str | None) -> Session | None:
    """The session a cookie stands for, if its signature holds, it has not expired or been ended, and its key
    is still active. Costs two reads (the session, the key) for a well-signed cookie, none for a forged one."""
    parts = (cookie or "").split(".")
    if len(parts) != 5 or parts[0] != VERSION or not parts[3].isdigit():
        return None
    _, session_id, key_id, stamp, mac = parts
    if not hmac.compare_digest(mac, _mac(VERSION, session_id, key_id, stamp)):
        return None
    expires = datetime.fromtimestamp(int(stamp), UTC)
    if expires <= _now():
        return None
    try:
        record = _table().get(SESSION_PREFIX + session_id)
    except DoesNotExist:
        return None
    if record.api_key_id != key_id or record.expires_at <= _now().timestamp():
        return None
    principal = keys.principal_of(key_id)
    if principal is None:
        return None
    return Session(session_id, principal, expires, cookie or "")


def end(session: Session) -> None:
    """Sign out: the session item goes, so the cookie stops working even if a copy of it survives."""
    _table()(SESSION_PREFIX + session.id).delete()


def csrf_token(session_id: str) -> str:
    return _mac("csrf", session_id)


def csrf_ok(session: Session, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(str(presented), csrf_token(session.id))


# --- the sign-in form (no session yet) ---------------------------------------------------------------
def new_signin_nonce() -> str:
    return secrets.token_urlsafe(18)


def signin_token(nonce: str) -> str:
    return _mac("signin", nonce)


def signin_token_ok(nonce: str | None, presented: str | None) -> bool:
    return bool(nonce) and bool(presented) and hmac.compare_digest(str(presented), signin_token(str(nonce)))


# --- one-time sign-in links --------------------------------------------------------------------------
def _link_key(token: str) -> str:
    return LINK_PREFIX + hashlib.sha256(token.encode()).hexdigest()


def create_link(key_id: str, lifetime: timedelta = LINK_LIFETIME) -> str:
    """A one-time token that signs in as the key `key_id` (for a local banner's link). Stored hashed."""
    token = secrets.token_urlsafe(24)
    now = _now()
    _table()(_link_key(token), api_key_id=key_id, created_at=now, expires_at=int((now + lifetime).timestamp())).save(
        condition=SessionRecord.key_id.does_not_exist()
    )
    return token


def redeem_link(token: str) -> Session | None:
    """Consume a sign-in link: a session for its key, once; None if unknown, used, expired or the key is gone."""
    if not token or len(token) > 100:
        return None
    model = _table()
    try:
        record = model.get(_link_key(token), consistent_read=True)
    except DoesNotExist:
        return None
    try:
        record.delete(condition=model.key_id.exists())
    except DeleteError as exc:
        if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
            return None  # another click consumed it first
        raise
    if record.expires_at <= _now().timestamp():
        return None
    principal = keys.principal_of(record.api_key_id)
    return None if principal is None else _start(principal)
