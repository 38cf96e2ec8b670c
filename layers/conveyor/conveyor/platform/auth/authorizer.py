"""The HTTP API's Lambda REQUEST authorizer (payload 2.0, simple responses).

API Gateway caches this answer per Authorization header (template: ReauthorizeEvery), so most requests never
reach DynamoDB. An HTTP API can only turn a refusal into 403, so an unknown or revoked key is passed on as
`authenticated: false` and the API answers 401 in its own error format; a missing header never gets here
(API Gateway answers 401 itself). The API function refuses every request whose context is not authenticated.
"""

from __future__ import annotations

from typing import Any

from conveyor.platform.auth.keys import Principal, authenticate


def authorize(event: dict[str, Any]) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    principal = authenticate(headers.get("authorization"))
    if principal is None:
        return {"isAuthorized": True, "context": {"authenticated": False}}
    return {"isAuthorized": True, "context": context_of(principal)}


def context_of(principal: Principal) -> dict[str, Any]:
    return {
        "authenticated": True,
        "tenant_id": principal.tenant_id,
        "scopes": ",".join(sorted(principal.scopes)),
        "key_id": principal.key_id,
    }


def principal_from(authorizer_context: dict[str, Any] | None) -> Principal | None:
    """The principal the authorizer vouched for, from the API event's requestContext.authorizer.lambda."""
    ctx = authorizer_context or {}
    if ctx.get("authenticated") not in (True, "true") or not ctx.get("tenant_id"):
        return None
    scopes = frozenset(s for s in str(ctx.get("scopes", "")).split(",") if s)
    return Principal(tenant_id=str(ctx["tenant_id"]), scopes=scopes, key_id=str(ctx.get("key_id", "")))
