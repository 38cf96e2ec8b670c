"""Zoho CRM v8 Contacts.

Written from Zoho's public documentation:
- Get records: https://www.zoho.com/crm/developer/docs/api/v8/get-records.html — GET /crm/v8/Contacts?fields=...
  (required in v8)&per_page (max 200)&page; past the first 2,000 records only `page_token` pages on (the answer's
  `info.next_page_token`); `info.more_records = false` ends the list. `sort_by=Modified_Time`, and the
  If-Modified-Since header returns only records modified since then (304 when there are none); 204 when empty.
  `ids=` (up to 100) reads records by id.
- Deleted records: https://www.zoho.com/crm/developer/docs/api/v8/get-deleted-records.html — GET
  /crm/v8/Contacts/deleted?type=all with If-Modified-Since; `deleted_time`, `info.more_records`.
- Notifications (webhooks): https://www.zoho.com/crm/developer/docs/api/v8/notifications/enable.html — each
  notification carries the `token` given when the channel was enabled (Zoho does not sign): it must equal the
  connection's webhook secret. `ids`, `operation` insert|update|delete.
- OAuth: https://www.zoho.com/crm/developer/docs/api/v8/refresh.html — POST {accounts}/oauth/v2/token
  grant_type=refresh_token; the refresh token does not rotate; a refused one answers {"error": "invalid_code"}.
  The header is `Authorization: Zoho-oauthtoken <token>` (not Bearer).
- Limits: https://www.zoho.com/crm/developer/docs/api/v8/api-limits.html — credits per 24 h and concurrency
  limits; 429 TOO_MANY_REQUESTS, with Retry-After or X-RATELIMIT-RESET (epoch milliseconds) when given.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

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
    iana_zone,
    parse_time,
    requested,
    retry_after_header,
    same,
)
from conveyor.platform.errors import PermanentError

CONTACTS = "/crm/v8/Contacts"


class Zoho:
    name: ClassVar[str] = "zoho"
    paging: ClassVar[str] = "page_token"
    max_page_size: ClassVar[int] = 200
    delta_field: ClassVar[str] = "Modified_Time"
    rate_limit: ClassVar[str] = "API credits per 24 h by edition; 10-25 concurrent requests (429 beyond)"
    auth_kinds: ClassVar[tuple[str, ...]] = ("oauth",)
    default_base_url: ClassVar[str] = "https://www.zohoapis.com"
    default_token_url: ClassVar[str] = "https://accounts.zoho.com/oauth/v2/token"  # noqa: S105 - a URL
    webhook_scheme: ClassVar[str] = "the notification's `token` equals the connection's webhook secret"

    def __init__(self, config: Config) -> None:
        self.config = config
        defaults = {"first": "First_Name", "last": "Last_Name", "email": "Email", "phone": "Phone"}
        self.fields = config.fields({**defaults, "mobile": "Mobile"})
        self._fields = requested(self.fields, self.delta_field)

    # --- reading ---------------------------------------------------------------------------------------------
    def list_page(self, http: Http, cursor: str | None, since: datetime | None, page_size: int) -> Page:
        per_page = min(page_size, self.max_page_size)
        state: dict[str, Any] = json.loads(cursor) if cursor else {"ph": "r", "pg": 1, "t": None}
        headers = {"if-modified-since": since.astimezone(UTC).isoformat(timespec="seconds")} if since else {}
        deleted = state["ph"] == "d"
        params: dict[str, Any] = {"per_page": per_page}
        if deleted:
            params.update(type="all", page=state["pg"])
        else:
            params.update(fields=self._fields, sort_by="Modified_Time", sort_order="asc")
            params.update({"page_token": state["t"]} if state.get("t") else {"page": state["pg"]})
        reply = http.request(
            "GET", f"{CONTACTS}/deleted" if deleted else CONTACTS, params=params, headers=headers, expect=(204, 304)
        )
        body: dict[str, Any] = (
            reply.body if reply.status == 200 and reply.body else {"data": [], "info": {"more_records": False}}
        )
        info = body.get("info") or {}
        if deleted:
            records = [self._deleted(r) for r in body.get("data") or []]
        else:
            records = [self.to_contact(r) for r in body.get("data") or []]
        if info.get("more_records"):
            nxt = {"ph": state["ph"], "pg": int(state["pg"]) + 1, "t": info.get("next_page_token")}
            return Page(records, json.dumps(nxt), info.get("count"))
        if not deleted and since is not None:
            return Page(records, json.dumps({"ph": "d", "pg": 1, "t": None}))
        return Page(records, None)

    def _deleted(self, record: Mapping[str, Any]) -> ContactData:
        return ContactData(
            external_id=str(record["id"]),
            name=str(record.get("display_name") or ""),
            updated_at=parse_time(record["deleted_time"]),
            deleted=True,
        )

    def get_many(self, http: Http, ids: Sequence[str]) -> list[ContactData]:
        reply = http.request("GET", CONTACTS, params={"ids": ",".join(ids), "fields": self._fields}, expect=(204,))
        found = {c.external_id: c for c in (self.to_contact(r) for r in (reply.body or {}).get("data") or [])}
        return [found.get(i) or gone(i) for i in ids]

    def to_contact(self, record: Mapping[str, Any]) -> ContactData:
        f = self.fields
        email = record.get(f["email"]) or None
        name = full_name(record.get(f["first"]), record.get(f["last"])) or record.get("Full_Name") or email
        return ContactData(
            external_id=str(record["id"]),
            name=str(name or f"Zoho contact {record['id']}"),
            updated_at=parse_time(record["Modified_Time"]),
            email=email,
            phone=e164(record.get(f["phone"]) or record.get(f["mobile"]), self.config.default_region),
            timezone=iana_zone(record.get(f["timezone"])) if "timezone" in f else None,
        )

    # --- auth and limits ---------------------------------------------------------------------------------------
    def auth_header(self, access_token: str) -> dict[str, str]:
        return {"authorization": f"Zoho-oauthtoken {access_token}"}

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
        if body.get("error") in ("invalid_code", "invalid_grant"):
            raise InvalidGrant(str(body["error"]))
        if reply.status != 200 or "access_token" not in body:
            raise PermanentError(f"Zoho token endpoint answered {reply.status}: {body.get('error', '')}"[:200])
        return Grant(body["access_token"], int(body.get("expires_in", 3600)), body.get("refresh_token"))

    def retry_after(self, status: int, headers: Mapping[str, str], now: datetime) -> int | None:
        explicit = retry_after_header(headers, now)
        if explicit is not None:
            return explicit
        if status != 429 and headers.get("x-ratelimit-remaining") != "0":
            return None
        reset = headers.get("x-ratelimit-reset")
        if reset and reset.isdigit():
            return max(1, int((int(reset) / 1000 - now.timestamp()) + 0.999))
        return 60

    # --- webhooks --------------------------------------------------------------------------------------------
    def verify_webhook(self, method: str, url: str, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
        try:
            token = json.loads(body or b"{}").get("token")
        except (ValueError, AttributeError):
            return False
        return isinstance(token, str) and same(token, secret)

    def parse_webhook(self, body: bytes) -> list[Change]:
        note = json.loads(body or b"{}")
        if not isinstance(note, dict) or note.get("module") != "Contacts":
            return []
        kind: Literal["upsert", "delete"] = "delete" if note.get("operation") == "delete" else "upsert"
        stamp = note.get("server_time")
        return [Change(str(i), kind, f"{i}:{stamp}:{note.get('operation')}") for i in note.get("ids") or []]
