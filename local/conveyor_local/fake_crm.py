"""Fake CRMs (dev and tests only, never deployed): Zoho CRM v8, Pipedrive and HubSpot CRM v3 as small werkzeug
apps that follow each vendor's documented request and response shapes (conveyor/connectors/<vendor>.py cites the
pages): paging (Zoho page/page_token past 2,000 records, Pipedrive cursor, HubSpot after), delta filters
(If-Modified-Since, updated_since, the search endpoint with its 10,000-result cap), deletions (Zoho's deleted
list, Pipedrive's soft delete + recents, HubSpot's archive), 429 with Retry-After on demand, OAuth access tokens
that expire and single-use refresh tokens that rotate, and signed webhooks (HubSpot v3, Pipedrive basic auth, Zoho
token) built by `webhook()`.

`FakeCrms` serves all three from one port: /zoho, /pipedrive, /hubspot (each vendor's paths below its prefix).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim", "Hedy", "Linus"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman", "Lee"]
ZONES = ["Europe/London", "America/New_York", "Europe/Berlin", "Asia/Tokyo", "Australia/Sydney"]


@dataclass
class Person:
    id: str
    first: str
    last: str
    email: str
    phone: str  # national US format, as people type it: the connectors make it E.164
    timezone: str
    modified: datetime
    created: datetime
    deleted_at: datetime | None = None


def _stamp(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=(moment.microsecond // 1000) * 1000)


@dataclass
class Vendor:
    """One fake CRM's state: its people, its OAuth tokens, injected failures, request counts."""

    name: str
    people: dict[str, Person] = field(default_factory=dict)
    access_seconds: int = 3600
    rotate_refresh: bool = True
    client_id: str = "client-id"
    client_secret: str = "client-secret"  # noqa: S105 - a fake's, for tests and make run
    api_token: str = "api-token"  # noqa: S105
    refresh_token: str = field(default_factory=lambda: "rt-" + secrets.token_hex(8))
    access: dict[str, datetime] = field(default_factory=dict)
    throttles: list[int] = field(default_factory=list)  # Retry-After of the next requests to answer 429
    discrete_limit: int = 2000  # Zoho: records reachable with `page` before `page_token` is required
    search_cap: int = 10_000  # HubSpot: results one search query may page through
    page_limit: int | None = None  # Pipedrive: a smaller page than asked for (the API's cap is 500)
    calls: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- the data --------------------------------------------------------------------------------------------
    def seed(self, count: int, *, start: datetime | None = None, first_id: int = 1000, spacing: float = 1.0) -> None:
        base = _stamp(start or datetime.now(UTC) - timedelta(days=3))
        for n in range(count):
            pid = str(first_id + n)
            moment = base + timedelta(seconds=n * spacing)
            self.people[pid] = Person(
                id=pid,
                first=FIRST[n % len(FIRST)],
                last=f"{LAST[n % len(LAST)]}-{n}",
                email=f"person{n}@example.com",
                phone=f"(212) 555-{n % 10000:04d}",
                timezone=ZONES[n % len(ZONES)],
                modified=moment,
                created=moment,
            )

    def change(self, pid: str, at: datetime, **fields: Any) -> None:
        person = self.people[pid]
        for key, value in fields.items():
            setattr(person, key, value)
        person.modified = _stamp(at)

    def add(self, pid: str, at: datetime, **fields: Any) -> None:
        moment = _stamp(at)
        base = {"first": "New", "last": f"Person-{pid}", "email": f"new{pid}@example.com", "phone": "(212) 555-0100"}
        self.people[pid] = Person(
            id=pid, timezone="Europe/London", modified=moment, created=moment, **{**base, **fields}
        )

    def delete(self, pid: str, at: datetime) -> None:
        self.people[pid].deleted_at = _stamp(at)
        self.people[pid].modified = _stamp(at)

    def live(self) -> list[Person]:
        return [p for p in self.people.values() if p.deleted_at is None]

    def throttle(self, retry_after: int, times: int = 1) -> None:
        self.throttles.extend([retry_after] * times)

    def count(self, what: str) -> None:
        with self.lock:
            self.calls[what] = self.calls.get(what, 0) + 1

    # --- OAuth -----------------------------------------------------------------------------------------------
    def grant(self, refresh_token: str) -> dict[str, Any] | None:
        """A refresh: single-use (when rotating) — a refresh token used once is refused afterwards."""
        with self.lock:
            self.calls["refresh"] = self.calls.get("refresh", 0) + 1
            if not secrets.compare_digest(refresh_token, self.refresh_token):
                return None
            access = "at-" + secrets.token_hex(8)
            self.access[access] = datetime.now(UTC) + timedelta(seconds=self.access_seconds)
            answer: dict[str, Any] = {"access_token": access, "expires_in": self.access_seconds}
            if self.rotate_refresh:
                self.refresh_token = "rt-" + secrets.token_hex(8)
                answer["refresh_token"] = self.refresh_token
            return answer

    def authorized(self, request: Request, scheme: str) -> bool:
        if request.headers.get("x-api-token") == self.api_token:
            return True
        header = request.headers.get("authorization", "")
        if not header.startswith(scheme + " "):
            return False
        if secrets.compare_digest(header, f"{scheme} {self.api_token}"):  # e.g. a HubSpot private app's token
            return True
        expiry = self.access.get(header[len(scheme) + 1 :])
        return expiry is not None and expiry > datetime.now(UTC)

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.access.clear()


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers or {}, content_type="application/json")


def _offset(cursor: str | None) -> int:
    return int(base64.urlsafe_b64decode(cursor.encode()).decode()) if cursor else 0


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


def _since(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T")).astimezone(UTC)


# --- Zoho CRM v8 ---------------------------------------------------------------------------------------------
def _zoho_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def zoho_record(p: Person) -> dict[str, Any]:
    return {
        "id": p.id,
        "First_Name": p.first,
        "Last_Name": p.last,
        "Full_Name": f"{p.first} {p.last}",
        "Email": p.email,
        "Phone": p.phone,
        "Time_Zone": p.timezone,
        "Modified_Time": _zoho_time(p.modified),
    }


def zoho(vendor: Vendor, request: Request, path: str) -> Response:
    refused = _zoho_gate(vendor, request, path)
    if refused is not None:
        return refused
    vendor.count("GET " + path)
    if path == "/crm/v8/Contacts/deleted":
        return _zoho_deleted(vendor, request)
    if path != "/crm/v8/Contacts":
        return _json({"code": "INVALID_URL_PATTERN", "status": "error"}, 404)
    if "fields" not in request.args:
        return _json({"code": "REQUIRED_PARAM_MISSING", "details": {"param": "fields"}, "status": "error"}, 400)
    if "ids" in request.args:
        wanted = set(request.args["ids"].split(","))
        found = [zoho_record(p) for p in vendor.live() if p.id in wanted]
        info = {"count": len(found), "more_records": False}
        return _json({"data": found, "info": info}) if found else Response(status=204)
    return _zoho_contacts(vendor, request)


def _zoho_gate(vendor: Vendor, request: Request, path: str) -> Response | None:
    """The token endpoint's answer, a throttle or an authentication failure; None lets the request through."""
    if path == "/oauth/v2/token":
        answer = vendor.grant(request.values.get("refresh_token", ""))
        if answer is None:
            return _json({"error": "invalid_code"})  # Zoho answers 200 with an error
        return _json({**answer, "api_domain": request.host_url.rstrip("/"), "token_type": "Bearer"})
    if vendor.throttles:
        vendor.count("429")
        return _json(
            {"code": "TOO_MANY_REQUESTS", "status": "error"}, 429, {"retry-after": str(vendor.throttles.pop(0))}
        )
    if not vendor.authorized(request, "Zoho-oauthtoken"):
        return _json({"code": "INVALID_TOKEN", "message": "invalid oauth token", "status": "error"}, 401)
    return None


def _zoho_deleted(vendor: Vendor, request: Request) -> Response:
    args = request.args
    per_page = min(int(args.get("per_page", 200)), 200)
    since = request.headers.get("if-modified-since")
    gone = sorted((p for p in vendor.people.values() if p.deleted_at), key=lambda p: (p.deleted_at, p.id))
    if since:
        gone = [p for p in gone if p.deleted_at and p.deleted_at >= _since(since)]
    page = int(args.get("page", 1))
    chunk = gone[(page - 1) * per_page : page * per_page]
    if not chunk:
        return Response(status=204)
    data = [
        {"id": p.id, "display_name": p.last, "type": "recycle", "deleted_time": _zoho_time(p.deleted_at)}
        for p in chunk
        if p.deleted_at
    ]
    more = page * per_page < len(gone)
    return _json({"data": data, "info": {"per_page": per_page, "count": len(data), "page": page, "more_records": more}})


def _zoho_contacts(vendor: Vendor, request: Request) -> Response:
    args = request.args
    per_page = min(int(args.get("per_page", 200)), 200)
    since = request.headers.get("if-modified-since")
    people = vendor.live()
    if since:
        moment = _since(since)
        people = [p for p in people if p.modified >= moment]
        if not people:
            return Response(status=304)
        people.sort(key=lambda p: (p.modified, p.id))
    else:
        people.sort(key=lambda p: int(p.id))
    if "page_token" in args:
        start = _offset(args["page_token"])
        page = start // per_page + 1
    else:
        page = int(args.get("page", 1))
        if page * per_page > vendor.discrete_limit:
            return _json(
                {"code": "DISCRETE_PAGINATION_LIMIT_EXCEEDED", "message": "use page_token past 2000 records"}, 400
            )
        start = (page - 1) * per_page
    chunk = people[start : start + per_page]
    if not chunk:
        return Response(status=204)
    more = start + per_page < len(people)
    info: dict[str, Any] = {"per_page": per_page, "count": len(chunk), "page": page, "more_records": more}
    if more:
        info["next_page_token"] = _cursor(start + per_page)
    return _json({"data": [zoho_record(p) for p in chunk], "info": info})


# --- Pipedrive -----------------------------------------------------------------------------------------------
def _pd_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pipedrive_person(p: Person) -> dict[str, Any]:
    return {
        "id": int(p.id),
        "name": f"{p.first} {p.last}",
        "first_name": p.first,
        "last_name": p.last,
        "emails": [{"value": p.email, "primary": True, "label": "work"}],
        "phones": [{"value": p.phone, "primary": True, "label": "mobile"}],
        "add_time": _pd_time(p.created),
        "update_time": _pd_time(p.modified),
        "active_flag": p.deleted_at is None,
        "custom_fields": {"tz": p.timezone},
    }


def pipedrive(vendor: Vendor, request: Request, path: str) -> Response:
    refused = _pipedrive_gate(vendor, request, path)
    if refused is not None:
        return refused
    vendor.count("GET " + path)
    if path == "/v1/recents":
        return _pipedrive_recents(vendor, request)
    if path != "/api/v2/persons":
        return _json({"success": False, "error": "not found"}, 404)
    return _pipedrive_persons(vendor, request)


def _pipedrive_gate(vendor: Vendor, request: Request, path: str) -> Response | None:
    """The token endpoint's answer, a throttle or an authentication failure; None lets the request through."""
    if path == "/oauth/token":
        expected = base64.b64encode(f"{vendor.client_id}:{vendor.client_secret}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return _json({"success": False, "error": "invalid_client"}, 401)
        answer = vendor.grant(request.form.get("refresh_token", ""))
        if answer is None:
            return _json(
                {"success": False, "message": "Invalid grant: refresh token is invalid", "error": "invalid_grant"}, 400
            )
        return _json({**answer, "token_type": "Bearer", "scope": "contacts:read", "api_domain": request.host_url})
    if vendor.throttles:
        vendor.count("429")
        wait = vendor.throttles.pop(0)
        headers = {
            "retry-after": str(wait),
            "x-ratelimit-limit": "80",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": str(wait),
        }
        return _json({"success": False, "error": "Rate limit exceeded"}, 429, headers)
    if not vendor.authorized(request, "Bearer"):
        return _json({"success": False, "error": "unauthorized access", "errorCode": 401}, 401)
    return None


def _pipedrive_recents(vendor: Vendor, request: Request) -> Response:
    args = request.args
    since = _since(args["since_timestamp"])
    changed = sorted((p for p in vendor.people.values() if p.modified >= since), key=lambda p: (p.modified, p.id))
    start, limit = int(args.get("start", 0)), min(int(args.get("limit", 100)), 500)
    chunk = changed[start : start + limit]
    more = start + limit < len(changed)
    pagination = {"start": start, "limit": limit, "more_items_in_collection": more}
    if more:
        pagination["next_start"] = start + limit
    data = [{"item": "person", "id": int(p.id), "data": pipedrive_person(p)} for p in chunk]
    return _json({"success": True, "data": data, "additional_data": {"pagination": pagination}})


def _pipedrive_persons(vendor: Vendor, request: Request) -> Response:
    args = request.args
    limit = int(args.get("limit", 100))
    if limit > 500:
        return _json({"success": False, "error": "limit must be at most 500"}, 400)
    limit = min(limit, vendor.page_limit or limit)
    people = vendor.live()
    if "ids" in args:
        wanted = set(args["ids"].split(","))
        people = [p for p in people if p.id in wanted]
    if "updated_since" in args:
        moment = _since(args["updated_since"])
        people = [p for p in people if p.modified >= moment]
    if args.get("sort_by") == "update_time":
        people.sort(key=lambda p: (p.modified, int(p.id)))
    else:
        people.sort(key=lambda p: int(p.id))
    start = _offset(args.get("cursor"))
    chunk = people[start : start + limit]
    nxt = _cursor(start + limit) if start + limit < len(people) else None
    return _json(
        {"success": True, "data": [pipedrive_person(p) for p in chunk], "additional_data": {"next_cursor": nxt}}
    )


# --- HubSpot CRM v3 ----------------------------------------------------------------------------------------------
def _hs_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _hs_zone(name: str) -> str:
    return name.lower().replace("/", "_slash_")


def hubspot_contact(p: Person) -> dict[str, Any]:
    archived = p.deleted_at is not None
    out: dict[str, Any] = {
        "id": p.id,
        "properties": {
            "firstname": p.first,
            "lastname": p.last,
            "email": p.email,
            "phone": p.phone,
            "hs_timezone": _hs_zone(p.timezone),
            "lastmodifieddate": _hs_time(p.modified),
            "hs_object_id": p.id,
        },
        "createdAt": _hs_time(p.created),
        "updatedAt": _hs_time(p.modified),
        "archived": archived,
    }
    if archived and p.deleted_at:
        out["archivedAt"] = _hs_time(p.deleted_at)
    return out


_HUBSPOT_LIMITS = {
    "x-hubspot-ratelimit-interval-milliseconds": "10000",
    "x-hubspot-ratelimit-max": "190",
    "x-hubspot-ratelimit-remaining": "150",
}


def hubspot(vendor: Vendor, request: Request, path: str) -> Response:
    refused = _hubspot_gate(vendor, request, path)
    if refused is not None:
        return refused
    vendor.count(f"{request.method} {path}")
    route = {
        ("GET", "/crm/v3/objects/contacts"): _hubspot_list,
        ("POST", "/crm/v3/objects/contacts/search"): _hubspot_search,
        ("POST", "/crm/v3/objects/contacts/batch/read"): _hubspot_batch_read,
    }.get((request.method, path))
    if route is None:
        return _json({"status": "error", "message": "not found"}, 404)
    return route(vendor, request)


def _hubspot_gate(vendor: Vendor, request: Request, path: str) -> Response | None:
    """The token endpoint's answer, a throttle or an authentication failure; None lets the request through."""
    if path == "/oauth/v1/token":
        answer = vendor.grant(request.form.get("refresh_token", ""))
        if answer is None:
            return _json({"status": "BAD_REFRESH_TOKEN", "message": "missing or invalid refresh token"}, 400)
        return _json({**answer, "token_type": "bearer"})
    if vendor.throttles:
        vendor.count("429")
        headers = {
            "retry-after": str(vendor.throttles.pop(0)),
            "x-hubspot-ratelimit-interval-milliseconds": "10000",
            "x-hubspot-ratelimit-max": "100",
            "x-hubspot-ratelimit-remaining": "0",
        }
        return _json(
            {
                "status": "error",
                "message": "You have reached your ten_secondly_rolling limit.",
                "policyName": "TEN_SECONDLY_ROLLING",
            },
            429,
            headers,
        )
    if not vendor.authorized(request, "Bearer"):
        return _json(
            {
                "status": "error",
                "message": "Authentication credentials not found.",
                "category": "INVALID_AUTHENTICATION",
            },
            401,
        )
    return None


def _hubspot_list(vendor: Vendor, request: Request) -> Response:
    limit = int(request.args.get("limit", 10))
    if limit > 100:
        return _json({"status": "error", "message": "limit must be at most 100", "category": "VALIDATION_ERROR"}, 400)
    archived = request.args.get("archived") == "true"
    people = sorted(
        (p for p in vendor.people.values() if (p.deleted_at is not None) == archived), key=lambda p: int(p.id)
    )
    start = int(request.args.get("after") or 0)
    chunk = people[start : start + limit]
    body: dict[str, Any] = {"results": [hubspot_contact(p) for p in chunk]}
    if start + limit < len(people):
        body["paging"] = {"next": {"after": str(start + limit), "link": "?after=" + str(start + limit)}}
    return _json(body, headers=_HUBSPOT_LIMITS)


def _hubspot_search(vendor: Vendor, request: Request) -> Response:
    query = request.get_json(force=True)
    limit = int(query.get("limit", 10))
    start = int(query.get("after") or 0)
    if limit > 200:
        return _json({"status": "error", "message": "limit must be at most 200", "category": "VALIDATION_ERROR"}, 400)
    if start + limit > vendor.search_cap:
        message = f"Search results are limited to {vendor.search_cap}"
        return _json({"status": "error", "message": message, "category": "VALIDATION_ERROR"}, 400)
    people = vendor.live()
    for group in query.get("filterGroups", []):
        for rule in group.get("filters", []):
            if rule["propertyName"] == "lastmodifieddate" and rule["operator"] == "GTE":
                moment = datetime.fromtimestamp(int(rule["value"]) / 1000, UTC)
                people = [p for p in people if p.modified >= moment]
    people.sort(key=lambda p: (p.modified, int(p.id)))
    chunk = people[start : start + limit]
    body = {"total": len(people), "results": [hubspot_contact(p) for p in chunk]}
    if start + limit < len(people):
        body["paging"] = {"next": {"after": str(start + limit)}}
    return _json(body)


def _hubspot_batch_read(vendor: Vendor, request: Request) -> Response:
    wanted = [i["id"] for i in request.get_json(force=True).get("inputs", [])]
    live = {p.id: p for p in vendor.live()}
    results = [hubspot_contact(live[i]) for i in wanted if i in live]
    missing = [i for i in wanted if i not in live]
    body = {"status": "COMPLETE", "results": results}
    if missing:
        body["errors"] = [{"status": "error", "category": "OBJECT_NOT_FOUND", "context": {"ids": missing}}]
        return _json(body, 207, _HUBSPOT_LIMITS)
    return _json(body, headers=_HUBSPOT_LIMITS)


# --- webhooks the fakes send ---------------------------------------------------------------------------------
def webhook(
    vendor: str,
    url: str,
    secret: str,
    changes: Iterable[tuple[str, str]],
    *,
    now_ms: int | None = None,
    event_ids: Iterable[int] | None = None,
) -> tuple[dict[str, str], bytes]:
    """The headers and body the vendor would POST for these (record id, "upsert" | "delete") changes."""
    import time

    now = int(time.time() * 1000) if now_ms is None else now_ms
    pairs = list(changes)
    if vendor == "hubspot":
        from conveyor.connectors.hubspot import sign_v3

        ids = list(event_ids) if event_ids is not None else [now * 10 + n for n in range(len(pairs))]
        events = [
            {
                "eventId": ids[n],
                "subscriptionId": 1,
                "portalId": 62515,
                "appId": 1160452,
                "occurredAt": now,
                "subscriptionType": "contact.deletion" if kind == "delete" else "contact.propertyChange",
                "attemptNumber": 0,
                "objectId": int(pid),
                "propertyName": "email",
                "changeSource": "CRM",
            }
            for n, (pid, kind) in enumerate(pairs)
        ]
        body = json.dumps(events).encode()
        stamp = str(now)
        return {
            "content-type": "application/json",
            "x-hubspot-request-timestamp": stamp,
            "x-hubspot-signature-v3": sign_v3(secret, "POST", url, body, stamp),
        }, body
    if vendor == "pipedrive":
        pid, kind = pairs[0]
        action = {"delete": "delete", "upsert": "change"}[kind]
        body = json.dumps(
            {
                "meta": {
                    "action": action,
                    "entity": "person",
                    "entity_id": pid,
                    "version": "2.0",
                    "timestamp": now // 1000,
                },
                "data": None,
                "previous": None,
            }
        ).encode()
        basic = base64.b64encode(f"conveyor:{secret}".encode()).decode()
        return {"content-type": "application/json", "authorization": f"Basic {basic}"}, body
    operation = "delete" if any(kind == "delete" for _, kind in pairs) else "update"
    body = json.dumps(
        {
            "server_time": now,
            "query_params": {},
            "module": "Contacts",
            "resource_uri": "https://www.zohoapis.com/crm/v8/Contacts",
            "ids": [pid for pid, _ in pairs],
            "affected_fields": [],
            "operation": operation,
            "channel_id": "1000",
            "token": secret,
        }
    ).encode()
    return {"content-type": "application/json"}, body


# --- serving -----------------------------------------------------------------------------------------------
HANDLERS = {"zoho": zoho, "pipedrive": pipedrive, "hubspot": hubspot}


class FakeCrms:
    """All three fakes on one port (127.0.0.1), each below its /<vendor> prefix."""

    def __init__(self, port: int = 0, *, people: int = 0) -> None:
        self.vendors = {name: Vendor(name) for name in HANDLERS}
        self.vendors["zoho"].rotate_refresh = False  # as documented: Zoho's refresh tokens do not rotate
        for vendor in self.vendors.values():
            if people:
                vendor.seed(people)
        self._server = make_server("127.0.0.1", port, self._app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-crms", daemon=True)

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        name, _, rest = request.path.lstrip("/").partition("/")
        handler = HANDLERS.get(name)
        response = (
            handler(self.vendors[name], request, "/" + rest) if handler else _json({"message": "no such CRM"}, 404)
        )
        return response(environ, start_response)

    def __getitem__(self, name: str) -> Vendor:
        return self.vendors[name]

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def url(self, vendor: str) -> str:
        return f"http://127.0.0.1:{self.port}/{vendor}"

    def token_url(self, vendor: str) -> str:
        return (
            self.url(vendor)
            + {"zoho": "/oauth/v2/token", "pipedrive": "/oauth/token", "hubspot": "/oauth/v1/token"}[vendor]
        )

    def start(self) -> FakeCrms:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
