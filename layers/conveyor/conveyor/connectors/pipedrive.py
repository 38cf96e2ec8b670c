"""Pipedrive persons.

Written from Pipedrive's public documentation:
- Persons v2: https://developers.pipedrive.com/docs/api/v1/Persons (API v2 tab) — GET /api/v2/persons with cursor
  pagination (`cursor`, `limit` up to 500; the next page's cursor is `additional_data.next_cursor`, null at the end),
  `updated_since` (RFC 3339; "later than or equal to"), `sort_by=update_time`, `ids` (comma-separated, up to 100).
  https://pipedrive.readme.io/docs/core-api-concepts-pagination
- Deletions: persons are soft-deleted; GET /v1/recents?items=person&since_timestamp= (offset paged, start/limit,
  `additional_data.pagination.more_items_in_collection` / `next_start`) lists recently changed persons, deleted
  ones with `active_flag: false`. A delta's last phase reads it and keeps the deleted ones.
- Webhooks v2: https://pipedrive.readme.io/docs/guide-for-webhooks-v2 — `meta.action` create|change|delete,
  `meta.entity` person, `meta.entity_id`; Pipedrive does not sign webhooks: it sends the HTTP basic auth
  credentials given when the webhook was created, so the connection's secret is the basic-auth password.
- OAuth: https://pipedrive.readme.io/docs/marketplace-oauth-authorization — POST https://oauth.pipedrive.com/oauth/token
  with basic auth (client id:secret), grant_type=refresh_token; the answer carries a new refresh token.
- Rate limits: https://pipedrive.readme.io/docs/core-api-concepts-rate-limiting — 429 with x-ratelimit-limit,
  x-ratelimit-remaining, x-ratelimit-reset (seconds until the window resets); Retry-After when given.
- Auth with an API token: the `x-api-token` header.
"""

from __future__ import annotations

import base64
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
    retry_after_header,
    same,
)
from conveyor.platform.errors import PermanentError

PERSONS = "/api/v2/persons"
RECENTS_LIMIT = 500
WEBHOOK_USER = "conveyor"


def _primary(values: Any) -> str | None:
    if not isinstance(values, list) or not values:
        return None
    chosen = next((v for v in values if isinstance(v, dict) and v.get("primary")), values[0])
    value = chosen.get("value") if isinstance(chosen, dict) else chosen
    return str(value) if value else None


class Pipedrive:
    name: ClassVar[str] = "pipedrive"
    paging: ClassVar[str] = "cursor"
    max_page_size: ClassVar[int] = 500
    delta_field: ClassVar[str] = "update_time"
    rate_limit: ClassVar[str] = "token-based daily budget; burst limits per 2 s window (429 + x-ratelimit-reset)"
    auth_kinds: ClassVar[tuple[str, ...]] = ("api_token", "oauth")
    default_base_url: ClassVar[str] = "https://api.pipedrive.com"
    default_token_url: ClassVar[str] = "https://oauth.pipedrive.com/oauth/token"  # noqa: S105 - a URL
    webhook_scheme: ClassVar[str] = "HTTP basic auth (user 'conveyor', the connection's webhook secret as password)"

    def __init__(self, config: Config) -> None:
        self.config = config
        self.timezone_field = config.field_map.get("timezone")  # a custom field's key, if the account has one

    # --- reading ---------------------------------------------------------------------------------------------
    def list_page(self, http: Http, cursor: str | None, since: datetime | None, page_size: int) -> Page:
        limit = min(page_size, self.max_page_size)
        state: dict[str, Any] = json.loads(cursor) if cursor else {"ph": "p", "c": None}
        if state["ph"] == "r":
            return self._deleted_since(http, since, int(state["s"]))
        params: dict[str, Any] = {"limit": limit}
        if state.get("c"):
            params["cursor"] = state["c"]
        if since is not None:
            params.update(
                updated_since=since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                sort_by="update_time",
                sort_direction="asc",
            )
        body = http.request("GET", PERSONS, params=params).body or {}
        records = [self.to_contact(p) for p in body.get("data") or []]
        after = (body.get("additional_data") or {}).get("next_cursor")
        if after:
            return Page(records, json.dumps({"ph": "p", "c": after}))
        return Page(records, json.dumps({"ph": "r", "s": 0}) if since is not None else None)

    def _deleted_since(self, http: Http, since: datetime | None, start: int) -> Page:
        assert since is not None  # noqa: S101 - only a delta has this phase
        params = {
            "items": "person",
            "since_timestamp": since.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "start": start,
            "limit": RECENTS_LIMIT,
        }
        body = http.request("GET", "/v1/recents", params=params).body or {}
        records = []
        for item in body.get("data") or []:
            data = item.get("data") or {}
            if item.get("item") == "person" and data and data.get("active_flag") is False:
                records.append(replace_deleted(self.to_contact(data)))
        pagination = (body.get("additional_data") or {}).get("pagination") or {}
        if pagination.get("more_items_in_collection"):
            return Page(records, json.dumps({"ph": "r", "s": int(pagination.get("next_start", start + RECENTS_LIMIT))}))
        return Page(records, None)

    def get_many(self, http: Http, ids: Sequence[str]) -> list[ContactData]:
        body = http.request("GET", PERSONS, params={"ids": ",".join(ids), "limit": len(ids)}).body or {}
        found = {c.external_id: c for c in (self.to_contact(p) for p in body.get("data") or [])}
        return [found.get(i) or gone(i) for i in ids]

    def to_contact(self, person: Mapping[str, Any]) -> ContactData:
        email = _primary(person.get("emails") or person.get("email"))
        zone = None
        if self.timezone_field:
            zone = iana_zone(
                (person.get("custom_fields") or {}).get(self.timezone_field) or person.get(self.timezone_field)
            )
        return ContactData(
            external_id=str(person["id"]),
            name=str(
                person.get("name")
                or full_name(person.get("first_name"), person.get("last_name"))
                or email
                or person["id"]
            ),
            updated_at=parse_time(person.get("update_time") or person.get("add_time")),
            email=email,
            phone=e164(_primary(person.get("phones") or person.get("phone")), self.config.default_region),
            timezone=zone,
            deleted=person.get("active_flag") is False,
        )

    # --- auth and limits ---------------------------------------------------------------------------------------
    def auth_header(self, access_token: str) -> dict[str, str]:
        return {"authorization": f"Bearer {access_token}"}

    def api_token_header(self, token: str) -> dict[str, str]:
        return {"x-api-token": token}

    def refresh(self, http: Http, client_id: str, client_secret: str, refresh_token: str) -> Grant:
        basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        reply = http.request(
            "POST",
            url=self.config.token_url,
            form={"grant_type": "refresh_token", "refresh_token": refresh_token},
            headers={"authorization": f"Basic {basic}"},
            authorized=False,
            expect=(400, 401),
        )
        body = reply.body or {}
        if reply.status != 200:
            if body.get("error") == "invalid_grant":
                raise InvalidGrant(str(body.get("message") or "refresh token refused"))
            raise PermanentError(f"Pipedrive token endpoint answered {reply.status}")
        return Grant(body["access_token"], int(body.get("expires_in", 3599)), body.get("refresh_token"))

    def retry_after(self, status: int, headers: Mapping[str, str], now: datetime) -> int | None:
        explicit = retry_after_header(headers, now)
        if explicit is not None:
            return explicit
        reset = headers.get("x-ratelimit-reset")
        if status == 429 or headers.get("x-ratelimit-remaining") == "0":
            return max(1, int(reset)) if reset and reset.isdigit() else 2
        return None

    # --- webhooks --------------------------------------------------------------------------------------------
    def verify_webhook(self, method: str, url: str, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
        expected = "Basic " + base64.b64encode(f"{WEBHOOK_USER}:{secret}".encode()).decode()
        return same(headers.get("authorization", ""), expected)

    def parse_webhook(self, body: bytes) -> list[Change]:
        event = json.loads(body or b"{}")
        meta = event.get("meta") or {} if isinstance(event, dict) else {}
        if meta.get("entity") != "person" or meta.get("entity_id") is None:
            return []
        kind: Literal["upsert", "delete"] = "delete" if meta.get("action") in ("delete", "deleted") else "upsert"
        return [Change(str(meta["entity_id"]), kind, f"{meta.get('entity_id')}:{meta.get('timestamp')}")]


def replace_deleted(contact: ContactData) -> ContactData:
    from dataclasses import replace

    return replace(contact, deleted=True)
