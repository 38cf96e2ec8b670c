"""The connector SDK: what a CRM connector is (one small protocol), what it returns, and the shared pure helpers
(E.164 phones, IANA zones, timestamps, Retry-After).

A connector is one module with one class implementing `Connector`, plus one line in `conveyor.connectors.REGISTRY`.
It speaks HTTP only through the `Http` it is given (the sync capability's SSRF-safe, authenticated client), so it
never sees a token, never retries, and never sleeps: a rate limit becomes `RetryLater` in `Http`, from the delay
the connector's `retry_after(status, headers)` reads from the vendor's own headers.

Paging contract: `list_page` returns `Page.next_cursor = None` only when the CRM itself said the list ended
(Zoho `info.more_records = false`, Pipedrive `additional_data.next_cursor = null`, HubSpot no `paging.next`);
a short page is never taken to mean the end.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Literal, Protocol

Paging = Literal["page_token", "cursor", "after"]
AuthKind = Literal["api_token", "oauth"]


@dataclass(frozen=True)
class ContactData:
    """A CRM person as Conveyor keeps it. `phone` is E.164 or None; `timezone` an IANA name or None."""

    external_id: str
    name: str
    updated_at: datetime
    email: str | None = None
    phone: str | None = None
    timezone: str | None = None
    deleted: bool = False

    def as_json(self) -> dict[str, Any]:
        """Compact form for a batch job's payload (about 150 bytes; 100 of them stay far below SQS's 256 KB)."""
        out: dict[str, Any] = {"x": self.external_id, "n": self.name, "u": self.updated_at.isoformat()}
        for key, value in (("e", self.email), ("p", self.phone), ("t", self.timezone)):
            if value:
                out[key] = value
        if self.deleted:
            out["d"] = 1
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ContactData:
        return cls(
            external_id=str(data["x"]),
            name=str(data["n"]),
            updated_at=datetime.fromisoformat(data["u"]),
            email=data.get("e"),
            phone=data.get("p"),
            timezone=data.get("t"),
            deleted=bool(data.get("d")),
        )


@dataclass(frozen=True)
class Page:
    records: list[ContactData]
    next_cursor: str | None  # None: the CRM said this was the last page
    total_hint: int | None = None


@dataclass(frozen=True)
class Change:
    """A thin change from a webhook: which record, what happened. The record itself is fetched by id (events
    arrive out of order: the fetched record is the truth, not the event)."""

    external_id: str
    kind: Literal["upsert", "delete"]
    event_id: str | None = None


@dataclass(frozen=True)
class Grant:
    """An OAuth token endpoint's answer. `refresh_token` None: the old one stays valid (Zoho does not rotate)."""

    access_token: str
    expires_in: int
    refresh_token: str | None = None


class InvalidGrant(Exception):  # noqa: N818 - the OAuth error's own name
    """The token endpoint refused the refresh token (revoked, or already used: single-use tokens rotate)."""


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: Any  # parsed JSON (None for an empty body)


class Http(Protocol):
    """What a connector may do on the network. Paths are relative to the connection's base URL; `url=` is an
    absolute URL (the token endpoint). 429 -> RetryLater(connector.retry_after(...)); 401 -> the token is
    refreshed once and the request repeated; other 4xx -> PermanentError; 5xx / no answer -> TransientError.
    `expect` lists statuses the connector handles itself (e.g. 304, 404, 400 for invalid_grant)."""

    def request(
        self,
        method: str,
        path: str = "",
        *,
        url: str | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        authorized: bool = True,
        expect: Sequence[int] = (),
    ) -> Reply: ...


@dataclass(frozen=True)
class Config:
    """A connection's connector settings: where the CRM is, how its fields map, the phone region default."""

    base_url: str
    token_url: str
    default_region: str = "US"  # for national-format phone numbers
    field_map: Mapping[str, str] = field(default_factory=dict)  # Conveyor field -> CRM field (overrides)

    def fields(self, defaults: Mapping[str, str]) -> dict[str, str]:
        """Conveyor field -> CRM field: the connector's defaults, overridden by the connection's field_map."""
        return {**defaults, **self.field_map}


def requested(fields: Mapping[str, str], delta_field: str) -> str:
    """The CRM fields to ask for (comma-separated, sorted): the mapped ones and the one deltas are read by."""
    return ",".join(sorted({*fields.values(), delta_field}))


class Connector(Protocol):
    """One CRM. Class attributes declare how it pages and what it allows; methods are thin over `Http`."""

    name: ClassVar[str]
    paging: ClassVar[Paging]
    max_page_size: ClassVar[int]
    delta_field: ClassVar[str]
    rate_limit: ClassVar[str]  # the vendor's documented limit, for humans (README, GET /v1/connectors)
    auth_kinds: ClassVar[tuple[AuthKind, ...]]
    default_base_url: ClassVar[str]
    default_token_url: ClassVar[str]
    webhook_scheme: ClassVar[str]  # how its webhooks are verified, for humans

    def __init__(self, config: Config) -> None: ...

    def list_page(self, http: Http, cursor: str | None, since: datetime | None, page_size: int) -> Page:
        """One page of contacts in the CRM's order; `since` (delta): those changed at or after it, deletions
        included."""
        ...

    def get_many(self, http: Http, ids: Sequence[str]) -> list[ContactData]:
        """The current state of these records; a record the CRM no longer has comes back `deleted=True`."""
        ...

    def auth_header(self, access_token: str) -> dict[str, str]: ...

    def refresh(self, http: Http, client_id: str, client_secret: str, refresh_token: str) -> Grant:
        """Exchange a refresh token at the token endpoint (raises InvalidGrant when it is refused)."""
        ...

    def retry_after(self, status: int, headers: Mapping[str, str], now: datetime) -> int | None:
        """Seconds to wait before the next request (a 429, or the vendor's headers saying the window is spent);
        None: no need to wait."""
        ...

    def verify_webhook(self, method: str, url: str, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
        """The vendor's own scheme (HubSpot v3 signature + timestamp window, Pipedrive basic auth, Zoho token)."""
        ...

    def parse_webhook(self, body: bytes) -> list[Change]: ...


# --- shared pure helpers -------------------------------------------------------------------------------------
def e164(raw: str | None, region: str) -> str | None:
    """A phone number as E.164 (+447700900123), or None when it is not a valid number. Parsing is libphonenumber's
    (phonenumberslite), imported on first use."""
    if not raw or not str(raw).strip():
        return None
    import phonenumbers

    try:
        number = phonenumbers.parse(str(raw), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def iana_zone(raw: str | None) -> str | None:
    """An IANA zone name if `raw` is one (zoneinfo decides), else None."""
    if not raw:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return raw


def parse_time(value: Any) -> datetime:
    """ISO 8601 (with Z or an offset), or epoch milliseconds; always aware UTC."""
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    text = str(value).replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def retry_after_header(headers: Mapping[str, str], now: datetime) -> int | None:
    """RFC 9110 Retry-After: delay-seconds or an HTTP-date."""
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return max(1, int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(1, int((when - now).total_seconds() + 0.999))


def gone(external_id: str) -> ContactData:
    """A record the CRM no longer has (asked for by id): deleted, as of now."""
    from conveyor.platform.clock import utcnow

    return ContactData(external_id=external_id, name="", updated_at=utcnow(), deleted=True)


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def full_name(*parts: Any) -> str:
    return " ".join(str(p).strip() for p in parts if p and str(p).strip())
