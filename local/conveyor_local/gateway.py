"""An HTTP API (payload 2.0) in front of the template's functions: routes, the Lambda authorizer and its cache.

It reproduces what API Gateway does around a function: route matching from the HttpApi events, the route's
authorizer first (401 when the identity source is missing, 403 when refused, answers cached for
ReauthorizeEvery seconds per identity), the 2.0 event and context, and the 2.0 response format.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from conveyor_local.inbox import PATH as INBOX_PATH
from conveyor_local.inbox import WebhookInbox
from conveyor_local.template import ACCOUNT, FunctionSpec, Template

log = logging.getLogger("conveyor_local")
Invoker = Callable[[FunctionSpec, dict[str, Any]], Any]
HTTP_API_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Authorizer:
    function: FunctionSpec
    identity_headers: tuple[str, ...]
    ttl: int


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: FunctionSpec
    authorizer: Authorizer | None
    pattern: re.Pattern[str]

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    cookies: list[str] = field(default_factory=list)  # payload 2.0 `cookies`: one Set-Cookie header each

    def json(self) -> Any:
        return json.loads(self.body)


def _pattern(path: str) -> re.Pattern[str]:
    regex = re.sub(r"\\\{([^}+]+)\\\+\\\}", r"(?P<\1>.+)", re.escape(path))
    regex = re.sub(r"\\\{([^}]+)\\\}", r"(?P<\1>[^/]+)", regex)
    return re.compile(f"^{regex}$")


class Gateway:
    def __init__(
        self,
        template: Template,
        invoke: Invoker,
        api_id: str = "local",
        functions: dict[str, FunctionSpec] | None = None,
    ) -> None:
        """`functions`: the specs to invoke (the stack's, with their local environment); default: the template's."""
        self.invoke, self.api_id = invoke, api_id
        self.routes = self._routes(template, functions or template.functions())
        self.inbox = WebhookInbox()
        self._cache: dict[tuple[str, ...], tuple[float, dict[str, Any]]] = {}

    @staticmethod
    def _routes(template: Template, functions: dict[str, FunctionSpec]) -> list[Route]:
        apis = template.of_type("AWS::Serverless::HttpApi")
        routes = []
        for spec in functions.values():
            for event in spec.events.values():
                if event.get("Type") != "HttpApi":
                    continue
                props = event.get("Properties", {})
                api_name = (props.get("ApiId") or {}).get("Ref") if isinstance(props.get("ApiId"), dict) else None
                auth = apis.get(api_name or "", {}).get("Properties", {}).get("Auth") or {}
                name = (props.get("Auth") or {}).get("Authorizer", auth.get("DefaultAuthorizer"))
                authorizer = None
                if name and name != "NONE":
                    config = auth["Authorizers"][name]
                    target = config["FunctionArn"]["Fn::GetAtt"]
                    identity = config.get("Identity", {})
                    authorizer = Authorizer(
                        function=functions[(target if isinstance(target, list) else target.split("."))[0]],
                        identity_headers=tuple(h.lower() for h in identity.get("Headers", [])),
                        ttl=int(identity.get("ReauthorizeEvery", 300)),
                    )
                method, path = props.get("Method", "ANY").upper(), props.get("Path", "/{proxy+}")
                routes.append(Route(method, path, spec, authorizer, _pattern(path)))
        # API Gateway prefers the most specific route: fewer path variables first, greedy ones last.
        return sorted(routes, key=lambda r: (r.path.count("+"), r.path.count("{"), -len(r.path)))

    def expire_authorizer_cache(self) -> None:
        """As if ReauthorizeEvery had elapsed for every cached answer."""
        self._cache.clear()

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route for a request; `ANY` covers the methods an HTTP API route can have (TRACE, CONNECT... match
        nothing, as on API Gateway)."""
        for route in self.routes:
            if route.method == method or (route.method == "ANY" and method in HTTP_API_METHODS):
                found = route.pattern.match(path)
                if found:
                    return route, found.groupdict()
        return None

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes = b"") -> HttpResponse:
        path, _, query = target.partition("?")
        headers = {k.lower(): v for k, v in headers.items()}
        if path == INBOX_PATH:  # the local webhook receiver: part of the local gateway only
            status, answer = self.inbox.handle(method.upper(), query, headers, body)
            return HttpResponse(status, {"content-type": "application/json"}, answer)
        matched = self.match(method.upper(), path)
        if matched is None:
            return _message(404, "Not Found")
        route, params = matched
        event = self._event(route, method.upper(), path, query, headers, body, params)
        if route.authorizer is not None:
            verdict = self._authorize(route, event)
            if isinstance(verdict, HttpResponse):
                return verdict
            event["requestContext"]["authorizer"] = {"lambda": verdict}
        try:
            result = self.invoke(route.function, event)
        except Exception:  # noqa: BLE001 - a crashing function is a 500 from API Gateway, as on AWS
            log.exception("%s crashed on %s", route.function.logical_id, route.key)
            return _message(500, "Internal Server Error")
        return _response(result)

    def _authorize(self, route: Route, event: dict[str, Any]) -> dict[str, Any] | HttpResponse:
        auth = route.authorizer
        assert auth is not None
        identity = tuple(event["headers"].get(h, "") for h in auth.identity_headers)
        if not all(identity):
            return _message(401, "Unauthorized")
        cache_key = (auth.function.logical_id, *identity)
        cached = self._cache.get(cache_key)
        if cached and cached[0] > time.monotonic():
            answer = cached[1]
        else:
            request = {
                **event,
                "type": "REQUEST",
                "identitySource": list(identity),
                "routeArn": f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{self.api_id}/$default/"
                f"{event['requestContext']['http']['method']}{event['rawPath']}",
            }
            request.pop("body", None)
            try:
                answer = self.invoke(auth.function, request)
            except Exception:  # noqa: BLE001 - an authorizer that crashes is a 500 from API Gateway
                return _message(500, "Internal Server Error")
            if auth.ttl:
                self._cache[cache_key] = (time.monotonic() + auth.ttl, answer)
        if not isinstance(answer, dict) or not answer.get("isAuthorized"):
            return _message(403, "Forbidden")
        return dict(answer.get("context") or {})

    def _event(
        self,
        route: Route,
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        params: dict[str, str],
    ) -> dict[str, Any]:
        now = datetime.now(UTC)
        text: str | None
        encoded = False
        try:
            text = body.decode() if body else None
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode(), True
        pairs = parse_qsl(query, keep_blank_values=True)
        query_params: dict[str, str] = {}
        for k, v in pairs:
            query_params[k] = f"{query_params[k]},{v}" if k in query_params else v
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.key,
            "rawPath": path,
            "rawQueryString": query,
            "headers": headers,
            "requestContext": {
                "accountId": ACCOUNT,
                "apiId": self.api_id,
                "domainName": headers.get("host", "127.0.0.1"),
                "domainPrefix": self.api_id,
                "http": {
                    "method": method,
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1",
                    "userAgent": headers.get("user-agent", ""),
                },
                "requestId": str(uuid.uuid4()),
                "routeKey": route.key,
                "stage": "$default",
                "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(now.timestamp() * 1000),
            },
            "isBase64Encoded": encoded,
        }
        if "cookie" in headers:
            event["cookies"] = [c.strip() for c in headers["cookie"].split(";")]
        if query_params:
            event["queryStringParameters"] = query_params
        if params:
            event["pathParameters"] = params
        if text is not None:
            event["body"] = text
        return event


def _message(status: int, message: str) -> HttpResponse:
    return HttpResponse(status, {"content-type": "application/json"}, json.dumps({"message": message}).encode())


def _response(result: Any) -> HttpResponse:
    """Payload 2.0: a dict with statusCode is a full response; anything else is a 200 JSON body."""
    if not (isinstance(result, dict) and "statusCode" in result):
        return HttpResponse(200, {"content-type": "application/json"}, json.dumps(result).encode())
    headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name.lower()] = ",".join(map(str, values))
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    cookies = [str(c) for c in result.get("cookies") or []]
    return HttpResponse(int(result["statusCode"]), headers, raw, cookies)
