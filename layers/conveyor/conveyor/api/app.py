"""The API function's resolver: routes from each capability, errors in one format, OpenAPI 3.1 + Swagger UI."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestValidationError,
    ResponseValidationError,
)

from conveyor import capabilities
from conveyor.admin import health as readiness
from conveyor.admin.models import Readiness
from conveyor.platform.errors import ConveyorError
from conveyor.platform.http import body, conditional
from conveyor.platform.http import errors as http_errors
from conveyor.platform.http.resolver import Resolver, check_path
from conveyor.platform.http.security import authenticate
from conveyor.platform.observability import logger

MAX_BODY_BYTES = body.MAX_BODY_BYTES
# Everything else needs an API key.
PUBLIC_PATHS = frozenset({"/health", "/health/ready", "/v1/docs", "/v1/openapi.json"})
TITLE, VERSION = "Conveyor API", "1.0.0"
DOCS_PATH = "/v1/docs"

capabilities.install()
app = Resolver(response_validation_error_http_code=500)
for router in capabilities.routers():
    app.include_router(router, prefix="/v1")


def _security() -> dict[str, Any]:
    # Powertools' OpenAPI models (~80 ms of imports, measured by `make bench`) are loaded only to describe the
    # API, never to serve it: Swagger UI is set up by the first docs request, not at cold start.
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    return {"security_schemes": {"apiKey": HTTPBearer(bearerFormat="cvk_...")}, "security": [{"apiKey": []}]}


@cache
def _enable_docs() -> None:
    app.enable_swagger(path=DOCS_PATH, title=TITLE, version=VERSION, **_security())


@app.get("/health", include_in_schema=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/health/ready", include_in_schema=False)
def ready() -> Response[Readiness]:
    """DynamoDB and SQS answer (503 naming the failing check otherwise); DLQ depths for the record."""
    report = readiness.readiness()
    return Response(
        status_code=503 if report.failing else 200, content_type=content_types.APPLICATION_JSON, body=report
    )


@app.get("/v1/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    schema = app.get_openapi_json_schema(title=TITLE, version=VERSION, **_security())
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=schema)


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


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Checks that precede routing (path and body encoding, body size, the caller's key), then the resolver."""
    caller = None
    try:
        check_path(event)
        pages = capabilities.pages_for(event.get("rawPath") or "")
        if pages is not None:  # e.g. the dashboard: its own resolver, (cookie) authentication and form bodies
            return pages(event, context)
        event = body.normalize(event)  # JSON API only: bodies read as JSON whatever their Content-Type
        if event.get("rawPath") not in PUBLIC_PATHS:
            caller = authenticate(event)
            app.append_context(principal=caller)
    except ConveyorError as exc:
        app.clear_context()
        return http_errors.as_proxy_result(http_errors.from_exception(exc))
    if event.get("rawPath") == DOCS_PATH:
        _enable_docs()
    return conditional.apply(event, app.resolve(event, context), caller.tenant_id if caller else None)
