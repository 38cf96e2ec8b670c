"""The API function's resolver: routes from each capability, errors in one format, OpenAPI 3.1 + Swagger UI.

A capability's router (its routes, models, service and their dependencies) is imported and mounted under /v1 by
the first request for one of its path segments (conveyor/capabilities.py `segments`), so the cold start does not
grow with the number of capabilities; the OpenAPI document mounts them all.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from typing import Any, Literal

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestValidationError,
    ResponseValidationError,
)
from pydantic import BaseModel

from conveyor import capabilities
from conveyor.admin import health as readiness
from conveyor.admin.health import Readiness
from conveyor.capabilities import Capability
from conveyor.platform import correlation
from conveyor.platform.errors import ConveyorError
from conveyor.platform.http import body, conditional
from conveyor.platform.http import errors as http_errors
from conveyor.platform.http.resolver import Resolver, check_path
from conveyor.platform.http.security import authenticate
from conveyor.platform.observability import logger

MAX_BODY_BYTES = body.MAX_BODY_BYTES
# Everything else needs an API key.
PUBLIC_PATHS = frozenset({"/health", "/health/ready", "/v1/docs", "/v1/openapi.json"})
CRM_WEBHOOK_ROUTE = "/v1/connections/{connection_id}/webhook"  # no API key: see _is_crm_webhook
TITLE, VERSION = "Conveyor API", "1.0.0"
DOCS_PATH = "/v1/docs"

capabilities.install()
app = Resolver(response_validation_error_http_code=500)
_mounted: set[str] = set()  # the capabilities whose routers `app` has included
_mounting = threading.Lock()


def mount(wanted: Iterable[Capability]) -> None:
    """Include each capability's router in the resolver under /v1, once per process."""
    for capability in wanted:
        if capability.name in _mounted:
            continue
        with _mounting:
            if capability.name not in _mounted:
                app.include_router(capabilities.load_router(capability), prefix="/v1")
                _mounted.add(capability.name)


def mount_for(path: str) -> None:
    """Mount the routers that serve `path` (/v1/<segment>...); a segment no capability serves mounts nothing, and
    the resolver answers 404."""
    if path.startswith("/v1/"):
        mount(capabilities.serving(path.split("/", 3)[2]))


def _security() -> dict[str, Any]:
    # Powertools' OpenAPI models (~80 ms of imports, measured by `make bench`) are loaded only to describe the
    # API, never to serve it: the document is built by the first request for it, not at cold start.
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    scheme = HTTPBearer(bearerFormat="cvk_...", description="An API key: `conveyor keys create --tenant T --scopes S`")
    return {"security_schemes": {"apiKey": scheme}, "security": [{"apiKey": []}]}


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (conveyor.api.openapi: Powertools' generated one, made true)."""
    from conveyor.api import openapi as spec

    mount(capability for capability in capabilities.CAPABILITIES if capability.router)
    return spec.document(app, title=TITLE, version=VERSION, security=_security())


class Health(BaseModel):
    status: Literal["ok"]


@app.get("/health", summary="Liveness: the API function answers", response_description="It answers")
def health() -> Health:
    """Answers 200 whenever the function runs; it checks nothing else (see /health/ready)."""
    return Health(status="ok")


@app.get(
    "/health/ready",
    summary="Readiness: DynamoDB and every queue answer",
    responses={
        200: {"description": "Ready", "content": {"application/json": {"model": Readiness}}},
        503: {
            "description": "A check failed (named in the report)",
            "content": {"application/json": {"model": Readiness}},
        },
    },
)
def ready() -> Response[Readiness]:
    """DynamoDB and SQS answer (503 naming the failing check otherwise); dead-letter depths for the record."""
    report = readiness.readiness()
    return Response(
        status_code=503 if report.failing else 200, content_type=content_types.APPLICATION_JSON, body=report
    )


@app.get("/v1/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=json.dumps(document()))


@app.get(DOCS_PATH, include_in_schema=False)
def docs() -> Response[str]:
    """Swagger UI over the document above (its script and styles inlined from Powertools' copy)."""
    from pathlib import Path

    import aws_lambda_powertools.event_handler as handler
    from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

    assets = Path(handler.__file__).parent / "openapi" / "swagger_ui"
    spec = json.dumps(document()).replace("</", "<\\/")
    html = generate_swagger_html(
        spec,
        (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        (assets / "swagger-ui.min.css").read_text(encoding="utf-8"),
        "",
        None,
        True,
    )
    return Response(status_code=200, content_type="text/html", body=html)


@app.exception_handler(ConveyorError)
def _domain_error(exc: ConveyorError) -> Response:
    return http_errors.from_exception(exc)


@app.exception_handler(RequestValidationError)
def _invalid_request(exc: RequestValidationError) -> Response:
    return http_errors.from_validation(list(exc.errors()))


@app.exception_handler(ResponseValidationError)
def _invalid_response(exc: ResponseValidationError) -> Response:
    logger.exception("response failed its own schema", extra={"problems": exc.errors()})
    return http_errors.error_response(500, "internal_error", "the server could not build a valid response")


@app.not_found
def _no_route(_: Exception) -> Response:
    return http_errors.error_response(404, "not_found", "no such route")


def _is_crm_webhook(event: dict[str, Any]) -> bool:
    """A CRM's webhook (POST /v1/connections/{id}/webhook) carries no API key: the CRM's own scheme verifies it
    (conveyor.sync.service.receive_webhook)."""
    parts = (event.get("rawPath") or "").split("/")
    return len(parts) == 5 and parts[1:3] == ["v1", "connections"] and parts[4] == "webhook" and bool(parts[3])


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The request's correlation id (in every log line, every job it makes, and the response's header)."""
    correlation_id = correlation.from_request(event)
    with correlation.bound(correlation_id):
        response = _handle(event, context)
    if correlation_id:
        response.setdefault("headers", {})[correlation.HEADER] = correlation_id
    return response


def _handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Checks that precede routing (path and body encoding, body size, the caller's key), then the resolver."""
    caller = None
    try:
        check_path(event)
        pages = capabilities.pages_for(event.get("rawPath") or "")
        if pages is not None:  # e.g. the dashboard: its own resolver, (cookie) authentication and form bodies
            return pages(event, context)
        event = body.normalize(event)  # JSON API only: bodies read as JSON whatever their Content-Type
        if event.get("rawPath") not in PUBLIC_PATHS and not _is_crm_webhook(event):
            caller = authenticate(event)
            app.append_context(principal=caller)
        mount_for(event.get("rawPath") or "")
    except ConveyorError as exc:
        app.clear_context()
        return http_errors.as_proxy_result(http_errors.from_exception(exc))
    return conditional.apply(event, app.resolve(event, context), caller.tenant_id if caller else None)
