"""The one place errors become HTTP responses: {"error": {"code", "message", "details"?}}."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types

from conveyor.platform import errors

STATUS: dict[type[errors.ConveyorError], int] = {
    errors.BadRequest: 400,
    errors.InvalidCursor: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.InvalidState: 409,
    errors.PayloadTooLarge: 413,
    errors.InvalidInput: 422,
    errors.Unavailable: 503,
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return error


def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"error": error_body(code, message, details)}, default=str),
    )


def status_for(exc: errors.ConveyorError) -> int:
    return next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 500)


def described(exc: errors.ConveyorError) -> tuple[int, dict[str, Any]]:
    """(status, error) exactly as `from_exception` answers them: for an error that is part of an answer (a
    batch's item) rather than the whole of it."""
    details = exc.details
    if isinstance(exc, errors.InvalidInput) and exc.fields:
        # Every use case's input is the request body: its field problems are located there, as pydantic's are.
        details = [{**problem, "loc": ["body", *problem["loc"]]} for problem in exc.fields]
    return status_for(exc), error_body(exc.code, exc.message, details)


def described_validation(problems: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    """(status, error) exactly as `from_validation` answers them."""
    if any(p.get("type") == "json_invalid" for p in problems):
        return 400, error_body("malformed_json", "the request body is not valid JSON")
    details = [{"loc": list(p.get("loc", ())), "msg": p.get("msg", ""), "type": p.get("type", "")} for p in problems]
    return 422, error_body("validation_error", "the request has invalid fields", details)


def from_exception(exc: errors.ConveyorError) -> Response:
    status, error = described(exc)
    return error_response(status, **error)


def from_validation(problems: list[dict[str, Any]]) -> Response:
    status, error = described_validation(problems)
    return error_response(status, **error)


def as_proxy_result(response: Response) -> dict[str, Any]:
    """An HTTP API (payload 2.0) result, for answers given before the resolver routes the request."""
    return {
        "statusCode": response.status_code,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": response.body,
        "isBase64Encoded": False,
    }


# --- the same table, documented: every operation's OpenAPI responses say what it can answer ------------------
_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}},
        }
    },
}
# What API Gateway itself answers (the authorizer's 401/403, throttling, an integration failure): {"message": ...}
_GATEWAY_SCHEMA = {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}}
_DESCRIPTIONS = {
    400: "Bad request: a body that is not UTF-8 JSON or is nested too deeply, a path that does not decode, a cursor "
    "this API did not issue",
    401: "No API key, or one that is unknown, revoked or expired",
    403: "The key lacks a scope this operation (or this job type) needs",
    404: "A resource the request names (in its path, query or body) is not in the caller's tenant",
    409: "The resource is not in a state that allows this, or changed meanwhile",
    413: "The body, or what would be stored of it, is too large",
    422: "Invalid fields (`details` locates each problem)",
    429: "Throttled by the gateway",
    500: "An error on our side",
    503: "A dependency is unavailable; retry later",
}
_FROM_GATEWAY = frozenset({401, 403, 429, 500, 503})


def _error_response(status: int, declared: dict[str, Any] | None = None) -> dict[str, Any]:
    shapes = [_ERROR_SCHEMA, _GATEWAY_SCHEMA] if status in _FROM_GATEWAY else [_ERROR_SCHEMA]
    own = ((declared or {}).get("content") or {}).get(content_types.APPLICATION_JSON, {}).get("schema")
    if own:
        shapes.insert(0, own)
    schema = {"anyOf": shapes} if len(shapes) > 1 else shapes[0]
    description = (declared or {}).get("description") or _DESCRIPTIONS[status]
    return {"description": description, "content": {content_types.APPLICATION_JSON: {"schema": schema}}}


def document(
    schema: dict[str, Any], declared: Mapping[tuple[str, str], Mapping[str, bool]] | None = None
) -> dict[str, Any]:
    """Give every operation of an OpenAPI document the error answers the edge and this table can give it: all
    of them 400/401/403/404/422/429/500/503, writes 409, those with a body 413, and the error statuses its route
    declares itself (`declared[(path, method)]`: status -> has a body of its own), with the route's description
    and, where it names one, its own body besides the error schema (readiness's 503); a GET may answer 304
    (conditional requests); a 204 or a 3xx has no body. Changes `schema` in place."""
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"] = {str(status): r for status, r in operation["responses"].items()}
            route = (declared or {}).get((path, method), {})
            own = {
                int(s): responses[s] if body else {"description": responses[s].get("description")}
                for s, body in route.items()
                if s[0] in "45" and s in responses
            }
            statuses = {400, 401, 403, 404, 422, 429, 500, 503, *own}
            if method != "get":
                statuses.add(409)
            if "requestBody" in operation:
                statuses.add(413)
            for status in sorted(statuses):
                responses[str(status)] = _error_response(status, own.get(status))
            if method == "get":
                responses.setdefault("304", {"description": "Not modified (the ETag sent in If-None-Match)"})
            for status, response in responses.items():
                if status == "204" or status.startswith("3"):  # no body: No Content, redirects, Not Modified
                    response.pop("content", None)
    return schema
