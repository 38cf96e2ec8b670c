"""Who is calling, and may they: the principal vouched for by the authorizer, and per-route scopes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver, BaseRouter
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from conveyor.platform.auth.authorizer import principal_from
from conveyor.platform.auth.keys import Principal
from conveyor.platform.errors import Forbidden, Unauthorized


def authenticate(event: dict[str, Any]) -> Principal:
    context = (event.get("requestContext") or {}).get("authorizer", {}).get("lambda")
    principal = principal_from(context)
    if principal is None:
        raise Unauthorized("missing, unknown, expired or revoked API key")
    return principal


def principal(router: BaseRouter) -> Principal:
    """The caller of the current request. Routes read the tenant only from here."""
    found = router.context.get("principal")
    if found is None:
        raise Unauthorized("missing, unknown, expired or revoked API key")
    return found


def requires(scope: str) -> Callable[[ApiGatewayResolver, NextMiddleware], Response]:
    """Route middleware: the caller's key must hold `scope` (or admin)."""

    def check(app: ApiGatewayResolver, next_middleware: NextMiddleware) -> Response:
        if not principal(app).allows(scope):
            raise Forbidden(f"this API key lacks the {scope!r} scope", details={"required_scope": scope})
        return next_middleware(app)

    check.__name__ = f"requires_{scope.replace(':', '_')}"
    check.scope = scope  # type: ignore[attr-defined]  # read by the OpenAPI document (conveyor.api.openapi)
    return check
