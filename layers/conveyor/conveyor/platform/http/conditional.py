"""Conditional GETs for every resource and list: a strong ETag, If-None-Match -> 304, and cache headers.

The ETag is a hash of the response body and the caller's tenant, so equal bodies of two tenants never share a tag
(a shared cache in front could otherwise answer one tenant's revalidation with another's entry). Tenant data is
`Cache-Control: private, no-cache` (a client may keep it but must revalidate: polling costs a 304, not a body),
`Vary: Authorization`. Health answers are never stored.
"""

from __future__ import annotations

import hashlib
from typing import Any

NEVER_STORED = frozenset({"/health", "/health/ready"})


def etag(body: str, tenant_id: str | None) -> str:
    digest = hashlib.sha256(f"{tenant_id or ''}\n{body}".encode()).hexdigest()
    return f'"{digest[:32]}"'


def matches(if_none_match: str | None, tag: str) -> bool:
    """RFC 9110 §13.1.2: weak comparison, a list of tags or `*`."""
    if not if_none_match:
        return False
    candidates = {part.strip().removeprefix("W/") for part in if_none_match.split(",")}
    return "*" in candidates or tag in candidates


def apply(event: dict[str, Any], result: dict[str, Any], tenant_id: str | None) -> dict[str, Any]:
    """The resolver's answer to a GET, with validators added, or a bodiless 304 when the client's copy is current."""
    method = (event.get("requestContext") or {}).get("http", {}).get("method", "")
    if method not in ("GET", "HEAD"):
        return result
    headers = result.setdefault("headers", {})
    if event.get("rawPath") in NEVER_STORED:
        headers["Cache-Control"] = "no-store"
        return result
    if result.get("statusCode") != 200 or result.get("isBase64Encoded"):
        return result
    tag = etag(result.get("body") or "", tenant_id)
    headers["ETag"] = tag
    headers["Cache-Control"] = "private, no-cache" if tenant_id else "no-cache"
    if tenant_id:
        headers["Vary"] = "Authorization"
    request_headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    if not matches(request_headers.get("if-none-match"), tag):
        return result
    kept = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "content-length")}
    return {**result, "statusCode": 304, "headers": kept, "body": "", "isBase64Encoded": False}
