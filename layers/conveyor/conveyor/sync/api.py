"""/v1/connections routes and their request/response models: parse -> one service call -> shape the response.
Scopes: sync:read, sync:write (or admin). The webhook route has no API key: the CRM's own scheme verifies it."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from conveyor.connectors import REGISTRY, connector_class
from conveyor.platform.clock import zone
from conveyor.platform.http.resolver import json_response, origin
from conveyor.platform.http.security import principal, requires
from conveyor.sync import service
from conveyor.sync.domain import Connection, SyncMode, SyncRun

router = Router()
READ, WRITE = requires("sync:read"), requires("sync:write")
ConnectionId = Annotated[str, Path(min_length=1, max_length=64)]
ConnectorName = Literal["zoho", "pipedrive", "hubspot"]
assert set(ConnectorName.__args__) == set(REGISTRY)  # type: ignore[attr-defined]  # noqa: S101 - must not drift


class Credentials(BaseModel):
    """An API token, or an OAuth client and refresh token. Stored KMS-encrypted; never returned."""

    model_config = ConfigDict(extra="forbid")

    api_token: str | None = Field(default=None, min_length=1, max_length=500)
    client_id: str | None = Field(default=None, min_length=1, max_length=500)
    client_secret: str | None = Field(default=None, min_length=1, max_length=500)
    refresh_token: str | None = Field(default=None, min_length=1, max_length=2000)
    webhook_secret: str | None = Field(
        default=None, min_length=16, max_length=500, description="Verifies the CRM's webhooks; generated if absent"
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Credentials:
        oauth = (self.client_id, self.client_secret, self.refresh_token)
        if self.api_token is None and not all(oauth):
            raise ValueError("give api_token, or client_id, client_secret and refresh_token")
        if self.api_token is not None and any(oauth):
            raise ValueError("give either api_token or the OAuth client and refresh token, not both")
        return self


class ConnectionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "connector": "pipedrive",
                    "credentials": {"api_token": "0123456789abcdef0123456789abcdef01234567"},
                    "field_map": {"timezone": "tz"},
                    "schedule_minutes": 60,
                    "default_timezone": "Europe/London",
                    "default_region": "GB",
                }
            ]
        },
    )

    connector: ConnectorName
    credentials: Credentials
    base_url: str | None = Field(default=None, max_length=300, description="The CRM's API host (its data centre)")
    token_url: str | None = Field(default=None, max_length=300, description="The OAuth token endpoint")
    field_map: dict[str, str] = Field(
        default_factory=dict, max_length=10, description='Conveyor field -> CRM field, e.g. {"timezone": "Time_Zone"}'
    )
    schedule_minutes: int = Field(default=60, ge=0, le=7 * 24 * 60, description="Delta sync every N minutes; 0: never")
    default_timezone: str = Field(default="UTC", max_length=64, description="For people the CRM has no zone for")
    default_region: str = Field(default="US", pattern="^[A-Z]{2}$", description="For national-format phone numbers")

    @field_validator("default_timezone")
    @classmethod
    def _iana(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("field_map")
    @classmethod
    def _fields(cls, value: dict[str, str]) -> dict[str, str]:
        allowed = {"first", "last", "email", "phone", "mobile", "timezone"}
        unknown = set(value) - allowed
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)}; mappable: {sorted(allowed)}")
        return value


class LastSync(BaseModel):
    process_id: str
    state: str
    finished_at: datetime | None = None
    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0


class ConnectionView(BaseModel):
    id: str
    connector: str
    auth: str
    state: Literal["active", "reauth_required"]
    reauth_reason: str | None = None
    base_url: str
    field_map: dict[str, str]
    schedule_minutes: int
    default_timezone: str
    default_region: str
    watermark: datetime | None = Field(description="Delta syncs read records changed at or after this")
    running_process_id: str | None = None
    next_delta_at: datetime | None = None
    last_sync: LastSync | None = None
    webhook_path: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, c: Connection) -> ConnectionView:
        running = c.running if c.running and not c.running.startswith("claim:") else None
        return cls(
            id=c.id,
            connector=c.connector,
            auth=c.auth,
            state=c.state.value,
            reauth_reason=c.reauth_reason,
            base_url=c.base_url,
            field_map=c.field_map,
            schedule_minutes=c.schedule_minutes,
            default_timezone=c.default_timezone,
            default_region=c.default_region,
            watermark=c.watermark,
            running_process_id=running,
            next_delta_at=c.next_delta_at,
            last_sync=LastSync.model_validate(c.last_sync) if c.last_sync else None,
            webhook_path=f"/v1/connections/{c.id}/webhook",
            created_at=c.created_at,
            updated_at=c.updated_at,
        )


class Created(ConnectionView):
    webhook_secret: str = Field(description="Shown once: give it to the CRM's webhook settings")


class ConnectionPage(BaseModel):
    items: list[ConnectionView]


class SyncRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"mode": "initial"}]})

    mode: Literal["initial", "delta"] = "delta"


class SyncStarted(BaseModel):
    process_id: str
    connection_id: str
    mode: str
    process_url: str


class RunView(BaseModel):
    process_id: str
    mode: str
    state: str
    started_at: datetime
    since: datetime | None = None
    finished_at: datetime | None = None
    counts: dict[str, int] | None = None
    watermark_after: datetime | None = None

    @classmethod
    def of(cls, r: SyncRun) -> RunView:
        return cls(
            process_id=r.process_id,
            mode=r.mode.value,
            state=r.state.value,
            started_at=r.started_at,
            since=r.since,
            finished_at=r.finished_at,
            counts=r.counts,
            watermark_after=r.watermark_after,
        )


class RunPage(BaseModel):
    items: list[RunView]


class ConnectorView(BaseModel):
    name: str
    paging: str
    max_page_size: int
    delta_field: str
    rate_limit: str
    auth: list[str]
    webhooks: str


class ConnectorPage(BaseModel):
    items: list[ConnectorView]


class WebhookAccepted(BaseModel):
    accepted: int = Field(description="Records whose change was enqueued (coalesced per record)")


def _tenant() -> str:
    return principal(router).tenant_id


@router.get("/connectors", middlewares=[READ], summary="The CRMs Conveyor syncs from, and how")
def list_connectors() -> ConnectorPage:
    items = []
    for name in sorted(REGISTRY):
        kind: Any = connector_class(name)
        items.append(
            ConnectorView(
                name=name,
                paging=kind.paging,
                max_page_size=kind.max_page_size,
                delta_field=kind.delta_field,
                rate_limit=kind.rate_limit,
                auth=list(kind.auth_kinds),
                webhooks=kind.webhook_scheme,
            )
        )
    return ConnectorPage(items=items)


@router.post(
    "/connections",
    middlewares=[WRITE],
    summary="Connect a CRM",
    responses={
        201: {
            "description": "Created; the webhook secret is shown this once",
            "content": {"application/json": {"model": Created}},
        }
    },
)
def create_connection(body: ConnectionIn) -> Response[Created]:
    connection, secret = service.create_connection(
        _tenant(),
        connector=body.connector,
        credentials=body.credentials.model_dump(exclude_none=True),
        base_url=body.base_url,
        token_url=body.token_url,
        field_map=body.field_map,
        schedule_minutes=body.schedule_minutes,
        default_timezone=body.default_timezone,
        default_region=body.default_region,
    )
    view = ConnectionView.of(connection)
    return json_response(Created(**view.model_dump(), webhook_secret=secret), 201)


@router.get("/connections", middlewares=[READ], summary="The tenant's CRM connections")
def list_connections() -> ConnectionPage:
    return ConnectionPage(items=[ConnectionView.of(c) for c in service.list_connections(_tenant())])


@router.get("/connections/<connection_id>", middlewares=[READ], summary="A CRM connection")
def get_connection(connection_id: ConnectionId) -> ConnectionView:
    return ConnectionView.of(service.get_connection(_tenant(), connection_id))


@router.delete(
    "/connections/<connection_id>",
    middlewares=[WRITE],
    summary="Disconnect (contacts stay)",
    responses={204: {"description": "Deleted"}},
)
def delete_connection(connection_id: ConnectionId) -> Response[None]:
    service.delete_connection(_tenant(), connection_id)
    return Response(status_code=204, body=None)


@router.post(
    "/connections/<connection_id>/sync",
    middlewares=[WRITE],
    summary="Start a sync (a process); 409 while one runs",
    responses={202: {"description": "Started", "content": {"application/json": {"model": SyncStarted}}}},
)
def start_sync(connection_id: ConnectionId, body: SyncRequest | None = None) -> Response[SyncStarted]:
    mode = SyncMode((body or SyncRequest()).mode)
    process_id = service.start_sync(_tenant(), connection_id, mode)
    started = SyncStarted(
        process_id=process_id, connection_id=connection_id, mode=mode.value, process_url=f"/v1/processes/{process_id}"
    )
    return json_response(started, 202)


@router.get("/connections/<connection_id>/syncs", middlewares=[READ], summary="A connection's syncs, newest first")
def list_syncs(connection_id: ConnectionId) -> RunPage:
    return RunPage(items=[RunView.of(r) for r in service.runs(_tenant(), connection_id)])


@router.post(
    "/connections/<connection_id>/webhook",
    summary="A CRM's webhook (no API key: verified with the CRM's own scheme)",
    openapi_extensions={
        "x-public": "HubSpot's signature v3, Pipedrive's basic auth or Zoho's notification token verifies it (401)"
    },
    responses={
        202: {"description": "Accepted", "content": {"application/json": {"model": WebhookAccepted}}},
        401: {"description": "Not verified"},
    },
)
def receive_webhook(connection_id: ConnectionId) -> Response[WebhookAccepted]:
    event = router.current_event
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    query = event.get("rawQueryString")
    url = origin(event.raw_event) + (event.get("rawPath") or "") + (f"?{query}" if query else "")  # what HubSpot signs
    accepted = service.receive_webhook(connection_id, "POST", url, headers, body)
    return json_response(WebhookAccepted(accepted=accepted), 202)
