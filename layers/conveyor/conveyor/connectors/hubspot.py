"""HubSpot CRM v3 contacts.

Written from HubSpot's public documentation:
- Objects API (list, batch read): https://developers.hubspot.com/docs/api/crm/contacts — GET
  /crm/v3/objects/contacts?limit (max 100)&after&properties&archived; the next page's cursor is `paging.next.after`,
  and no `paging.next` means the list ended. POST /crm/v3/objects/contacts/batch/read {inputs: [{id}]}.
- Search: https://developers.hubspot.com/docs/api/crm/search — POST /crm/v3/objects/contacts/search with
  filterGroups / sorts / after / limit (max 200); at most 10,000 results per query (a request past that is a 400),
  so a delta walks windows: when the next `after` would pass 10,000 the query restarts at the last record's
  `lastmodifieddate` (GTE: the boundary's records are seen twice, and the second sighting changes nothing).
- Webhooks signature v3: https://developers.hubspot.com/docs/api/webhooks/validating-requests —
  base64(HMAC-SHA256(client secret, method + URI + body + X-HubSpot-Request-Timestamp)), in X-HubSpot-Signature-v3;
  requests older than 5 minutes are rejected.
- OAuth: https://developers.hubspot.com/docs/api/oauth/tokens — POST /oauth/v1/token (form, grant_type=refresh_token);
  a refused refresh token answers 400 {"status": "BAD_REFRESH_TOKEN"} (or error=invalid_grant).
- Rate limits: https://developers.hubspot.com/docs/api/usage-details — 429; X-HubSpot-RateLimit-Interval-Milliseconds,
  -Max, -Remaining on the objects APIs (search sends none: 5 requests / second per account).
Deletions: HubSpot archives contacts; a delta's last phase lists archived contacts (archived=true) and keeps
those archived since the watermark.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import unquote

from conveyor.connectors.base import (
    Change,
    Config,
    ContactData,
    Grant,
    Http,
    InvalidGrant,
    Page,
    e164,
    full_name,
    gone,
    parse_time,
    requested,
    retry_after_header,
    same,
)
from conveyor.platform.errors import PermanentError

SEARCH_CAP = 10_000
SIGNATURE_WINDOW_MS = 5 * 60 * 1000
CONTACTS = "/crm/v3/objects/contacts"


def hubspot_zone(value: str | None) -> str | None:
    """HubSpot's hs_timezone enumeration ("america_slash_new_york") as an IANA name ("America/New_York")."""
    if not value:
        return None
    from conveyor.connectors.base import iana_zone

    if "/" in value:
        return iana_zone(value)
    parts = value.split("_slash_")
    name = "/".join("_".join(w[:1].upper() + w[1:] for w in part.split("_")) for part in parts)
    return iana_zone(name)


class HubSpot:
    name: ClassVar[str] = "hubspot"
    paging: ClassVar[str] = "after"
    max_page_size: ClassVar[int] = 100
    delta_field: ClassVar[str] = "lastmodifieddate"
    rate_limit: ClassVar[str] = "100-190 requests / 10 s per app and account; search 5 / s; 10,000 results per search"
    auth_kinds: ClassVar[tuple[str, ...]] = ("api_token", "oauth")  # private app token, or OAuth
    default_base_url: ClassVar[str] = "https://api.hubapi.com"
    default_token_url: ClassVar[str] = "https://api.hubapi.com/oauth/v1/token"  # noqa: S105 - a URL
    webhook_scheme: ClassVar[str] = "X-HubSpot-Signature-v3 (HMAC-SHA256 with the app's client secret), 5-minute window"

    def __init__(self, config: Config) -> None:
        self.config = config
        defaults = {"first": "firstname", "last": "lastname", "email": "email", "phone": "phone"}
        self.fields = config.fields({**defaults, "mobile": "mobilephone", "timezone": "hs_timezone"})
        self._properties = requested(self.fields, self.delta_field)

    # --- reading ---------------------------------------------------------------------------------------------
    def list_page(self, http: Http, cursor: str | None, since: datetime | None, page_size: int) -> Page:
        limit = min(page_size, self.max_page_size)
        if since is None:
            return self._list(http, cursor, limit, archived=False, since=None)
        state: dict[str, Any] = (
            json.loads(cursor) if cursor else {"ph": "s", "w": int(since.timestamp() * 1000), "a": None}
        )
        if state["ph"] == "x":
            page = self._list(http, state.get("a"), limit, archived=True, since=since)
            nxt = json.dumps({"ph": "x", "a": page.next_cursor}) if page.next_cursor else None
            return Page(page.records, nxt)
        return self._search(http, state, limit)

    def _list(self, http: Http, after: str | None, limit: int, *, archived: bool, since: datetime | None) -> Page:
        params: dict[str, Any] = {"limit": limit, "properties": self._properties, "archived": str(archived).lower()}
        if after:
            params["after"] = after
        body = http.request("GET", CONTACTS, params=params).body or {}
        records = [self.to_contact(r) for r in body.get("results", [])]
        if archived and since is not None:
            records = [r for r in records if r.updated_at >= since]
        return Page(records, ((body.get("paging") or {}).get("next") or {}).get("after"))

    def _search(self, http: Http, state: dict[str, Any], limit: int) -> Page:
        window = int(state["w"])
        request: dict[str, Any] = {
            "filterGroups": [
                {"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(window)}]}
            ],
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            "properties": self._properties.split(","),
            "limit": limit,
        }
        if state.get("a"):
            request["after"] = state["a"]
        body = http.request("POST", f"{CONTACTS}/search", json=request).body or {}
        records = [self.to_contact(r) for r in body.get("results", [])]
        after = ((body.get("paging") or {}).get("next") or {}).get("after")
        if after is None:
            return Page(records, json.dumps({"ph": "x", "a": None}), body.get("total"))
        if int(after) + limit > SEARCH_CAP:  # the next request would pass the cap: a new window from here
            last = int(records[-1].updated_at.timestamp() * 1000) if records else window
            if last <= window:
                raise PermanentError(f"more than {SEARCH_CAP} HubSpot contacts share lastmodifieddate {window}")
            return Page(records, json.dumps({"ph": "s", "w": last, "a": None}), body.get("total"))
        return Page(records, json.dumps({"ph": "s", "w": window, "a": after}), body.get("total"))

    def get_many(self, http: Http, ids: Sequence[str]) -> list[ContactData]:
        body = (
            http.request(
                "POST",
                f"{CONTACTS}/batch/read",
                json={"inputs": [{"id": i} for i in ids], "properties": self._properties.split(",")},
                expect=(207,),
            ).body
            or {}
        )
        found = {r.external_id: r for r in (self.to_contact(x) for x in body.get("results", []))}
        return [found.get(i) or gone(i) for i in ids]

    def to_contact(self, record: Mapping[str, Any]) -> ContactData:
        props = record.get("properties") or {}
        f = self.fields
        archived = bool(record.get("archived"))
        stamp = record.get("archivedAt") if archived else (props.get("lastmodifieddate") or record.get("updatedAt"))
        email = props.get(f["email"]) or None
        return ContactData(
            external_id=str(record["id"]),
            name=full_name(props.get(f["first"]), props.get(f["last"])) or email or f"HubSpot contact {record['id']}",
            updated_at=parse_time(stamp),
            email=email,
            phone=e164(props.get(f["phone"]) or props.get(f["mobile"]), self.config.default_region),
            timezone=hubspot_zone(props.get(f["timezone"])),
            deleted=archived,
        )

    # --- auth and limits ---------------------------------------------------------------------------------------
    def auth_header(self, access_token: str) -> dict[str, str]:
        return {"authorization": f"Bearer {access_token}"}

    def refresh(self, http: Http, client_id: str, client_secret: str, refresh_token: str) -> Grant:
        reply = http.request(
            "POST",
            url=self.config.token_url,
            form={
                "grant_type": "refresh_token",
                "client_id": client_id,
                "client_secret": client_secret,
                "refresh_token": refresh_token,
            },
            authorized=False,
            expect=(400, 401),
        )
        body = reply.body or {}
        if reply.status != 200:
            if body.get("status") == "BAD_REFRESH_TOKEN" or body.get("error") == "invalid_grant":
                raise InvalidGrant(body.get("message") or "refresh token refused")
            raise PermanentError(f"HubSpot token endpoint answered {reply.status}")
        return Grant(body["access_token"], int(body.get("expires_in", 1800)), body.get("refresh_token"))

    def retry_after(self, status: int, headers: Mapping[str, str], now: datetime) -> int | None:
        explicit = retry_after_header(headers, now)
        if explicit is not None:
            return explicit
        interval = headers.get("x-hubspot-ratelimit-interval-milliseconds")
        spent = headers.get("x-hubspot-ratelimit-remaining") == "0"
        if status == 429 or spent:
            return max(1, int(interval) // 1000) if interval and interval.isdigit() else 10
        return None

    # --- webhooks --------------------------------------------------------------------------------------------
    def verify_webhook(self, method: str, url: str, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
        return verify_v3(method, url, headers, body, secret, now_ms=None)

    def parse_webhook(self, body: bytes) -> list[Change]:
        events = json.loads(body or b"[]")
        changes = []
        for event in events if isinstance(events, list) else []:
            kind = str(event.get("subscriptionType", ""))
            if not kind.startswith("contact.") or event.get("objectId") is None:
                continue
            deleted = kind in ("contact.deletion", "contact.privacyDeletion")
            changes.append(
                Change(str(event["objectId"]), "delete" if deleted else "upsert", str(event.get("eventId") or ""))
            )
        return changes


def sign_v3(secret: str, method: str, url: str, body: bytes, timestamp: str) -> str:
    source = method.upper().encode() + unquote(url).encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()


def verify_v3(
    method: str, url: str, headers: Mapping[str, str], body: bytes, secret: str, *, now_ms: int | None
) -> bool:
    import time

    signature = headers.get("x-hubspot-signature-v3")
    timestamp = headers.get("x-hubspot-request-timestamp")
    if not signature or not timestamp or not timestamp.isdigit():
        return False
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if abs(now - int(timestamp)) > SIGNATURE_WINDOW_MS:
        return False
    return same(sign_v3(secret, method, url, body, timestamp), signature)
