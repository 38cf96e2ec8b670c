"""/v1/webhooks routes: parse -> one service call -> shape the response. Scopes: webhooks:read, webhooks:write.

The event catalogue (GET /v1/webhooks/event-types) is built from every capability's `CATALOGUE`, one pydantic
model per event type, so each type's envelope has its own JSON Schema in the OpenAPI document.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, Union

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, create_model

from conveyor import capabilities
from conveyor.platform.http.security import principal, requires
from conveyor.webhooks import domain, service
from conveyor.webhooks.domain import Delivery, DeliveryStatus, Subscription

router = Router()
READ, WRITE = requires("webhooks:read"), requires("webhooks:write")
SubscriptionId = Annotated[str, Path(pattern=r"^whk_[0-9A-Z]{26}$")]
DeliveryId = Annotated[str, Path(pattern=r"^dlv_[0-9A-Z]{26}$")]
PATTERN = r"^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?)$"
EventPattern = Annotated[str, Field(pattern=PATTERN, max_length=100, examples=["contact.*"])]


# --- the event catalogue -------------------------------------------------------------------------------
def _model_name(event_type: str) -> str:
    return "".join(part.capitalize() for part in event_type.replace("_", ".").split(".")) + "Event"


def _event_models() -> dict[str, type[BaseModel]]:
    models: dict[str, type[BaseModel]] = {}
    for spec in capabilities.event_catalogue():
        models[spec.name] = create_model(
            _model_name(spec.name),
            __doc__=spec.description,
            id=(str, Field(pattern=r"^evt_[0-9A-Z]{26}$", description="Stable across retries (webhook-id)")),
            type=(Literal[spec.name], ...),  # type: ignore[valid-type]
            timestamp=(datetime, ...),
            tenant_id=(str, ...),
            data=(spec.data, ...),
        )
    return models


EVENT_MODELS = _event_models()
WebhookEvent = Annotated[Union[tuple(EVENT_MODELS.values())], Field(discriminator="type")]  # noqa: UP007


class EventTypeInfo(BaseModel):
    type: str
    description: str
    sample: WebhookEvent  # type: ignore[valid-type]


class EventCatalogue(BaseModel):
    items: list[EventTypeInfo]


# --- request and response shapes -----------------------------------------------------------------------
class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=2048, examples=["https://hooks.example.com/conveyor"])
    event_types: list[EventPattern] = Field(min_length=1, max_length=50, examples=[["contact.*", "job.failed"]])
    description: str | None = Field(default=None, max_length=500)
    enabled: bool = True
    rate_limit_per_second: int | None = Field(default=None, ge=1, le=1000, description="Requests per second, at most")
    alert_contact_id: str | None = Field(
        default=None, max_length=64, description="A contact (notify) told when the endpoint fails or is disabled"
    )


class SubscriptionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=8, max_length=2048)
    event_types: list[EventPattern] | None = Field(default=None, min_length=1, max_length=50)
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = None
    rate_limit_per_second: int | None = Field(default=None, ge=1, le=1000)
    alert_contact_id: str | None = Field(default=None, max_length=64)


class EndpointHealth(BaseModel):
    last_success_at: datetime | None = None
    failing_since: datetime | None = None
    consecutive_failures: int = 0
    breaker: Literal["closed", "open", "probing"] = "closed"
    breaker_open_until: datetime | None = None
    warnings_sent: int = 0


class SubscriptionOut(BaseModel):
    id: str
    url: str
    event_types: list[str]
    description: str | None = None
    enabled: bool
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    rate_limit_per_second: int | None = None
    alert_contact_id: str | None = None
    active_secrets: int = Field(description="Secrets signing deliveries now (more than 1 during a rotation)")
    health: EndpointHealth
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, sub: Subscription) -> SubscriptionOut:
        from conveyor.platform.clock import utcnow

        now, health = utcnow(), sub.health
        breaker = "closed"
        if health.breaker_open_until is not None:
            breaker = "open" if health.breaker_open_until > now else "probing"
        return cls(
            id=sub.id,
            url=sub.url,
            event_types=sub.event_types,
            description=sub.description,
            enabled=sub.enabled,
            disabled_reason=sub.disabled_reason,
            disabled_at=sub.disabled_at,
            rate_limit_per_second=sub.rate_limit_per_second,
            alert_contact_id=sub.alert_contact_id,
            active_secrets=sum(1 for s in sub.secrets if s.active(now)),
            health=EndpointHealth(
                last_success_at=health.last_success_at,
                failing_since=health.failing_since,
                consecutive_failures=health.consecutive_failures,
                breaker=breaker,
                breaker_open_until=health.breaker_open_until,
                warnings_sent=health.warnings_sent,
            ),
            created_at=sub.created_at,
            updated_at=sub.updated_at,
        )


class SubscriptionWithSecret(SubscriptionOut):
    secret: str = Field(description="The signing secret (whsec_...). Shown once: store it now.")


class SubscriptionList(BaseModel):
    items: list[SubscriptionOut]


class RotateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_seconds: int = Field(
        default=int(domain.DEFAULT_GRACE.total_seconds()),
        ge=0,
        le=int(domain.MAX_GRACE.total_seconds()),
        description="How long the previous secrets keep signing (default 24 h, at most 7 days)",
    )


class RecoverRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime = Field(description="Redeliver failed and skipped deliveries of events since then")


class TestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_type: str = Field(default="job.completed", max_length=100)


class AttemptOut(BaseModel):
    at: datetime
    trigger: Literal["scheduled", "manual", "recover", "test"]
    status_code: int | None = None
    duration_ms: int
    error: Literal["dns", "connect", "tls", "timeout", "blocked", "http"] | None = None
    message: str | None = None
    response_excerpt: str | None = Field(default=None, description="The first 4 KiB of the answer")
    next_attempt_at: datetime | None = None


class DeliverySummary(BaseModel):
    id: str
    subscription_id: str
    event_id: str
    event_type: str
    status: Literal["pending", "delivered", "failed", "skipped"]
    attempt_count: int
    next_attempt_at: datetime | None = None
    test: bool = False
    created_at: datetime
    updated_at: datetime

    @classmethod
    def fields_of(cls, d: Delivery) -> dict[str, Any]:
        return {
            "id": d.id,
            "subscription_id": d.subscription_id,
            "event_id": d.event_id,
            "event_type": d.event_type,
            "status": str(d.status),
            "attempt_count": d.attempt_count,
            "next_attempt_at": d.next_attempt_at if d.status == DeliveryStatus.PENDING else None,
            "test": d.test,
            "created_at": d.created_at,
            "updated_at": d.updated_at,
        }

    @classmethod
    def of(cls, d: Delivery) -> DeliverySummary:
        return cls(**cls.fields_of(d))


class DeliveryOut(DeliverySummary):
    event: dict[str, Any] = Field(description="The envelope as sent (the body of every attempt)")
    attempts: list[AttemptOut]

    @classmethod
    def of(cls, d: Delivery) -> DeliveryOut:  # type: ignore[override]
        attempts = [
            AttemptOut(
                at=a.at,
                trigger=str(a.trigger),
                status_code=a.status_code,
                duration_ms=a.duration_ms,
                error=str(a.error) if a.error else None,
                message=a.message,
                response_excerpt=a.response_excerpt,
                next_attempt_at=a.next_attempt_at,
            )
            for a in d.attempts
        ]
        return cls(**cls.fields_of(d), event=d.event, attempts=attempts)


class DeliveryPage(BaseModel):
    items: list[DeliverySummary]
    next_cursor: str | None = None


def _json(body: BaseModel, status: int) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def _tenant() -> str:
    return principal(router).tenant_id


# --- routes --------------------------------------------------------------------------------------------
@router.get("/webhooks/event-types", middlewares=[READ], summary="The catalogue of event types, with samples")
def event_types() -> EventCatalogue:
    items = [
        EventTypeInfo(
            type=spec.name,
            description=spec.description,
            sample={
                "id": "evt_01JDX3Q7ZV5J1M9S2K8T4W6Y0A",
                "type": spec.name,
                "timestamp": "2026-12-01T10:00:00Z",
                "tenant_id": "tenant-a",
                "data": spec.sample,
            },
        )
        for spec in capabilities.event_catalogue()
    ]
    return EventCatalogue(items=items)


@router.post(
    "/webhooks",
    middlewares=[WRITE],
    summary="Subscribe an endpoint to event types (the signing secret is shown once)",
    responses={201: {"description": "Created", "content": {"application/json": {"model": SubscriptionWithSecret}}}},
)
def create(request: SubscriptionIn) -> Response[SubscriptionWithSecret]:
    sub, secret = service.create(_tenant(), **request.model_dump())
    return _json(SubscriptionWithSecret(**SubscriptionOut.of(sub).model_dump(), secret=secret), 201)


@router.get("/webhooks", middlewares=[READ], summary="List webhook subscriptions")
def list_subscriptions() -> SubscriptionList:
    return SubscriptionList(items=[SubscriptionOut.of(s) for s in service.list_all(_tenant())])


@router.get("/webhooks/<subscription_id>", middlewares=[READ], summary="Get a webhook subscription")
def get_subscription(subscription_id: SubscriptionId) -> SubscriptionOut:
    return SubscriptionOut.of(service.get(_tenant(), subscription_id))


@router.patch("/webhooks/<subscription_id>", middlewares=[WRITE], summary="Change a webhook subscription")
def patch_subscription(subscription_id: SubscriptionId, request: SubscriptionPatch) -> SubscriptionOut:
    given = request.model_dump(include=request.model_fields_set)
    return SubscriptionOut.of(service.update(_tenant(), subscription_id, **given))


@router.delete(
    "/webhooks/<subscription_id>",
    middlewares=[WRITE],
    summary="Delete a webhook subscription",
    responses={204: {"description": "Deleted"}},
)
def delete_subscription(subscription_id: SubscriptionId) -> Response[None]:
    service.delete(_tenant(), subscription_id)
    return Response(status_code=204)


@router.post(
    "/webhooks/<subscription_id>/rotate-secret",
    middlewares=[WRITE],
    summary="Rotate the signing secret (the new one is shown once; old ones sign until the grace ends)",
)
def rotate_secret(subscription_id: SubscriptionId, request: RotateRequest) -> SubscriptionWithSecret:
    sub, secret = service.rotate_secret(_tenant(), subscription_id, timedelta(seconds=request.grace_seconds))
    return SubscriptionWithSecret(**SubscriptionOut.of(sub).model_dump(), secret=secret)


@router.post(
    "/webhooks/<subscription_id>/recover",
    middlewares=[WRITE],
    summary="Re-enable and redeliver failed and skipped deliveries since a time, in order",
    responses={202: {"description": "Recovery started", "content": {"application/json": {"model": SubscriptionOut}}}},
)
def recover(subscription_id: SubscriptionId, request: RecoverRequest) -> Response[SubscriptionOut]:
    return _json(SubscriptionOut.of(service.recover(_tenant(), subscription_id, request.since)), 202)


@router.post(
    "/webhooks/<subscription_id>/test",
    middlewares=[WRITE],
    summary="Send a signed sample event now",
    responses={202: {"description": "Sent to the queue", "content": {"application/json": {"model": DeliveryOut}}}},
)
def send_test(subscription_id: SubscriptionId, request: TestRequest) -> Response[DeliveryOut]:
    return _json(DeliveryOut.of(service.send_test(_tenant(), subscription_id, request.event_type)), 202)


@router.get("/webhooks/<subscription_id>/deliveries", middlewares=[READ], summary="The delivery log, newest first")
def list_deliveries(
    subscription_id: SubscriptionId,
    status: Annotated[Literal["pending", "delivered", "failed", "skipped"] | None, Query()] = None,
    event_type: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> DeliveryPage:
    items, next_cursor = service.list_deliveries(
        _tenant(), subscription_id, status=status, event_type=event_type, limit=limit, cursor=cursor
    )
    return DeliveryPage(items=[DeliverySummary.of(d) for d in items], next_cursor=next_cursor)


@router.get(
    "/webhooks/<subscription_id>/deliveries/<delivery_id>",
    middlewares=[READ],
    summary="One delivery with every attempt",
)
def get_delivery(subscription_id: SubscriptionId, delivery_id: DeliveryId) -> DeliveryOut:
    return DeliveryOut.of(service.get_delivery(_tenant(), subscription_id, delivery_id))


@router.post(
    "/webhooks/<subscription_id>/deliveries/<delivery_id>/resend",
    middlewares=[WRITE],
    summary="Send a delivery again now",
    responses={202: {"description": "Sent to the queue", "content": {"application/json": {"model": DeliveryOut}}}},
)
def resend(subscription_id: SubscriptionId, delivery_id: DeliveryId) -> Response[DeliveryOut]:
    return _json(DeliveryOut.of(service.resend(_tenant(), subscription_id, delivery_id)), 202)
