"""The HTTP API resolver every API route is served by: Powertools' APIGatewayHttpResolver with the edge's rules."""

from __future__ import annotations

from re import Match
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types

from conveyor.platform.http import body, errors


class Resolver(APIGatewayHttpResolver):
    """Validation on; JSON bodies read by `body.loads` (depth and encoding limits); path parameters decoded.

    API Gateway matches routes on the raw (percent-encoded) path and hands the decoded values to the function
    (`org%3A42` is the id `org:42`). Powertools matches `rawPath` again and used to keep the encoded text, so
    ids were validated, and looked up, still encoded."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("enable_validation", True)
        kwargs.setdefault("json_body_deserializer", body.loads)
        super().__init__(**kwargs)

    def get_openapi_schema(self, **kwargs: Any) -> Any:
        """Powertools' document, with the error answers every operation can give (conveyor.platform.http.errors);
        the JSON route and Swagger UI both read it from here."""
        document = super().get_openapi_schema(**kwargs)
        # What each route declares itself (in the document, Powertools gives a declared answer without content the
        # route's return schema, and adds its own 422 and 500): status -> whether it names a body of its own.
        declared = {
            (route.openapi_path, route.method.lower()): {
                str(status): "content" in response for status, response in (route.responses or {}).items()
            }
            for route in (*self._static_routes, *self._dynamic_routes)
        }
        described = errors.document(document.model_dump(by_alias=True, exclude_none=True), declared)
        return type(document).model_validate(described)

    def _convert_matches_into_route_keys(self, match: Match[str]) -> dict[str, str]:
        # check_path has refused paths that do not decode as UTF-8, so this cannot raise.
        return {name: unquote(value, errors="strict") for name, value in match.groupdict().items()}


def check_path(event: dict[str, Any]) -> None:
    """Refuse (400 `invalid_encoding`) a path whose percent-escapes do not decode as UTF-8."""
    try:
        unquote(event.get("rawPath") or "", errors="strict")
    except UnicodeDecodeError:
        raise body.InvalidEncoding("the request path is not UTF-8 once percent-decoded") from None


def origin(event: dict[str, Any]) -> str:
    """`scheme://host` as the caller saw this request (its Host header, else API Gateway's domain name): the base
    of URLs the API hands out or checks (a CRM's signed webhook URL, a report's emailed link)."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    host = headers.get("host") or (event.get("requestContext") or {}).get("domainName") or "localhost"
    proto = (headers.get("x-forwarded-proto") or "https").split(",")[0].strip()
    return f"{proto}://{host}"


def json_response(body: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer with a status other than the route's default 200 (201, 202...): `body` a pydantic model."""
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)
