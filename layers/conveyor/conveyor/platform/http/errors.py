"""The one place errors become HTTP responses: {"error": {"code", "message", "details"?}}."""

from __future__ import annotations

import json
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


def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps({"error": error}, default=str)
    )


def status_for(exc: errors.ConveyorError) -> int:
    return next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 500)


def from_exception(exc: errors.ConveyorError) -> Response:
    details = exc.details
    if isinstance(exc, errors.InvalidInput) and exc.fields:
        # Every use case's input is the request body: its field problems are located there, as pydantic's are.
        details = [{**problem, "loc": ["body", *problem["loc"]]} for problem in exc.fields]
    return error_response(status_for(exc), exc.code, exc.message, details)


def from_validation(problems: list[dict[str, Any]]) -> Response:
    if any(p.get("type") == "json_invalid" for p in problems):
        return error_response(400, "malformed_json", "the request body is not valid JSON")
    details = [{"loc": list(p.get("loc", ())), "msg": p.get("msg", ""), "type": p.get("type", "")} for p in problems]
    return error_response(422, "validation_error", "the request has invalid fields", details)


def as_proxy_result(response: Response) -> dict[str, Any]:
    """An HTTP API (payload 2.0) result, for answers given before the resolver routes the request."""
    return {
        "statusCode": response.status_code,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": response.body,
        "isBase64Encoded": False,
    }
