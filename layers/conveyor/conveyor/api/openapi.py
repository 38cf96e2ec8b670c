"""The OpenAPI 3.1 document: Powertools' generated one, made true to what the API answers.

Built on the first request for it (never at cold start: the OpenAPI models cost ~80 ms of imports), cached.
What it adds to the generated document, and why:
- one error schema, `Error` (`{"error": {"code", "message", "details"}}`), on every error status of every
  operation: Powertools' `{"detail": [...]}` 422 schema (`HTTPValidationError`) is not what the API sends;
- the statuses an operation can return, by the edge's rules (`_statuses`): every /v1 route can answer 400
  (a path or body that is not UTF-8, malformed JSON, a bad cursor), 401 (no valid key), 403 (a scope missing),
  422 (invalid fields) and 500; a route with path parameters 404; a route that changes state 409 (a state that
  forbids it, or a concurrent change that won); a route with a body 413 (over 256 KiB);
- tags per capability in the capability list's order, health first, each operation's scope, idempotency and
  description; `security: []` on the public health routes;
- `POST /v1/jobs`'s body as a discriminated union on `type`, one member per registered job type with its
  payload's schema (adding a job type adds its member);
- each request body's examples (the models' `examples`) as media-type examples, so Swagger UI offers them.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Error",
    "description": "Every error the API answers (4xx and 5xx) has this shape.",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {
                    "type": "string",
                    "description": "Machine-readable: bad_request, invalid_encoding, malformed_json, invalid_cursor, "
                    "too_deeply_nested, unauthorized, forbidden, not_found, conflict, invalid_state, "
                    "payload_too_large, validation_error, internal_error, unavailable",
                    "examples": ["not_found"],
                },
                "message": {"type": "string", "description": "For people; may change", "examples": ["no such job"]},
                "details": {
                    "description": "Optional, by code: for validation_error a list of {loc, msg, type}; "
                    "for forbidden {required_scope}; otherwise an object with context"
                },
            },
        }
    },
}

# API Gateway answers some requests itself, before the function runs, with its own body: the authorizer's
# refusal (401 no key / 403 a key it denies) and throttling (429). Those statuses document both shapes.
GATEWAY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "GatewayError",
    "description": 'API Gateway\'s own answer (before the API runs): `{"message": "Unauthorized"}` and the like.',
    "required": ["message"],
    "properties": {"message": {"type": "string", "examples": ["Unauthorized"]}},
}
GATEWAY_STATUSES = frozenset({401, 403, 429})

STATUS_TEXT = {
    400: "Bad request: the path or body is not UTF-8, the body is not JSON, or a cursor is not one the API made",
    401: "No API key, or an unknown, expired or revoked one (send `Authorization: Bearer cvk_...`)",
    403: "The key lacks the scope this operation needs (details.required_scope)",
    404: "No such resource for your tenant (an id in the path, or one the body names, e.g. a contact)",
    409: "The resource's state forbids this, or a concurrent change came first (read it again and retry)",
    413: "The request body is over 256 KiB",
    422: "Invalid fields (details lists each: loc, msg, type)",
    500: "A server error (reported; retry later)",
    503: "A dependency (DynamoDB, SQS, Lambda) did not answer; retry later",
}

TAGS = {
    "health": "Liveness and readiness; no API key needed.",
    "jobs": "Background jobs: enqueue, read, list, cancel, retry, run now, delete. A job's type decides its queue "
    "and payload (see EnqueueRequest). Scopes: jobs:read, jobs:write (some types need more, e.g. "
    "notification.send needs reminders:read / reminders:write).",
    "notify": "Contacts, their channels and quiet hours, ad-hoc notifications, the in-app feed. Scopes: "
    "reminders:read, reminders:write.",
    "reminders": "Appointments and medication schedules, the reminders planned from them, the tenant's reminder "
    "policy. Scopes: reminders:read, reminders:write.",
    "admin": "Queues: depths, dead letters, redrive, pause/resume; bulk retry of failed jobs. Scope: admin "
    "(platform for other tenants' dead letters).",
    "webhooks": "Outbound webhooks (Standard Webhooks signatures): subscriptions, the event catalogue, the "
    "delivery log, resend, recover. Scopes: webhooks:read, webhooks:write.",
}
IDEMPOTENT_METHODS = {"get", "put", "delete", "head", "options"}


_built: dict[int, dict[str, Any]] = {}


def document(app: Any, *, title: str, version: str, security: dict[str, Any]) -> dict[str, Any]:
    """The finished document (a fresh copy each call; built once per process and resolver)."""
    if id(app) not in _built:
        _built[id(app)] = _document(app, title, version, security)
    return copy.deepcopy(_built[id(app)])


def _document(app: Any, title: str, version: str, security: dict[str, Any]) -> dict[str, Any]:
    doc = json.loads(app.get_openapi_json_schema(title=title, version=version, description=DESCRIPTION, **security))
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(unused, None)
    schemas["Error"] = ERROR_SCHEMA
    schemas["GatewayError"] = GATEWAY_SCHEMA
    _job_union(schemas)
    routes = {(r.openapi_path, r.method.lower()): r for r in _routes(app)}
    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            route = routes.get((path, method))
            _describe(path, method, operation, route)
            _errors(path, method, operation)
            _examples(operation, schemas)
    doc["tags"] = [{"name": name, "description": text} for name, text in TAGS.items()]
    doc["paths"] = dict(sorted(doc["paths"].items(), key=lambda item: _order(item[0], item[1])))
    return doc


DESCRIPTION = (
    "Conveyor runs background jobs, reminders, notifications and outbound webhooks. Every /v1 route needs an API "
    "key (`Authorization: Bearer cvk_...`, made with `conveyor keys create`); each operation names the scope it "
    'needs. Errors are always `{"error": {"code", "message", "details"}}`. Lists are cursored: pass '
    "`next_cursor` back as `cursor`. An authorizer caches a key's answer for up to 60 s, so a revoked key can keep "
    "working that long. API Gateway may answer 429 (throttled) or 503 with its own body."
)


def _routes(app: Any) -> Iterable[Any]:
    return [*app._static_routes, *app._dynamic_routes]  # noqa: SLF001 - Powertools keeps its routes there


def _tag(path: str, route: Any) -> str:
    if not path.startswith("/v1/"):
        return "health"
    module = getattr(route.func, "__module__", "") if route else ""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in TAGS else "jobs"  # noqa: PLR2004 - conveyor.<cap>.api


def _scope(route: Any) -> str | None:
    for middleware in getattr(route, "middlewares", None) or ():
        scope = getattr(middleware, "scope", None)
        if scope:
            return str(scope)
    return None


def _describe(path: str, method: str, operation: dict[str, Any], route: Any) -> None:
    operation["tags"] = [_tag(path, route)]
    lines = [operation.get("description") or operation.get("summary") or ""]
    if not path.startswith("/v1/"):
        operation["security"] = []
        lines.append("Public: no API key.")
    else:
        scope = _scope(route)
        if scope:
            operation["x-required-scope"] = scope
            lines.append(f"Scope: `{scope}`." if scope == "admin" else f"Scope: `{scope}` (or `admin`).")
    params = {p.get("name") for p in operation.get("parameters", [])}
    if "idempotency-key" in params:
        lines.append(
            "Idempotency: send an `Idempotency-Key` header; a repeat with the same key and body answers 200 with "
            "the first result instead of doing it again (a different body under that key: 409)."
        )
    elif method in IDEMPOTENT_METHODS:
        lines.append("Idempotent: repeating it has the same effect as doing it once.")
    else:
        lines.append("Not idempotent: a repeat acts again (it may answer 409 if the state has moved on).")
    operation["description"] = "\n\n".join(line for line in lines if line)


def _statuses(path: str, method: str, operation: dict[str, Any]) -> list[int]:
    if not path.startswith("/v1/"):
        return [500]
    statuses = [400, 401, 403, 404, 422, 500]
    if method in ("post", "put", "patch", "delete"):
        statuses.append(409)
    if "requestBody" in operation:
        statuses.append(413)
    if path.startswith("/v1/queues"):
        statuses.append(503)
    return sorted(statuses)


def _errors(path: str, method: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    if not path.startswith("/v1/"):
        responses.pop("422", None)  # the health routes take no input
    for status in _statuses(path, method, operation):
        responses[str(status)] = {"description": STATUS_TEXT[status]}
    for status, response in responses.items():
        if status == "204":
            response.pop("content", None)  # no body
        elif status[0] in "45" and path.startswith("/v1/"):  # /health/ready's 503 is its report, not an error
            response["content"] = {"application/json": {"schema": _error_schema(int(status))}}
    operation["responses"] = dict(sorted(responses.items()))


def _error_schema(status: int) -> dict[str, Any]:
    error = {"$ref": "#/components/schemas/Error"}
    if status in GATEWAY_STATUSES:
        return {"anyOf": [error, {"$ref": "#/components/schemas/GatewayError"}]}
    return error


def _examples(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    media = (operation.get("requestBody") or {}).get("content", {}).get("application/json")
    if not media:
        return
    schema = media.get("schema", {})
    refs = [schema] + list(schema.get("anyOf", []))
    found: dict[str, Any] = {}
    for ref in refs:
        name = str(ref.get("$ref", "")).rsplit("/", 1)[-1]
        target = schemas.get(name, {})
        members = [m["$ref"].rsplit("/", 1)[-1] for m in target.get("oneOf", []) if "$ref" in m]
        for member in members or [name]:
            for i, value in enumerate(schemas.get(member, {}).get("examples", [])):
                found[f"{member}" if i == 0 else f"{member}-{i + 1}"] = {"summary": _summary(member), "value": value}
    if found:
        media["examples"] = found


def _summary(model_name: str) -> str:
    return model_name.removesuffix("Job").removesuffix("In").removesuffix("Request") or model_name


def _order(path: str, operations: dict[str, Any]) -> tuple[int, str]:
    first: dict[str, Any] = next(iter(operations.values()), {})
    tag = (first.get("tags") or ["jobs"])[0]
    return (list(TAGS).index(tag) if tag in TAGS else len(TAGS), path)


# --- the job request as a discriminated union ------------------------------------------------------------
def _job_union(schemas: dict[str, Any]) -> None:
    """EnqueueRequest becomes `oneOf` one member per job type (discriminator `type`), each with its payload."""
    from conveyor.jobs import registry
    from conveyor.jobs.api import EnqueueRequest

    members = [_member(registry.require(name), EnqueueRequest) for name in sorted(registry.names())]
    if not members:
        return
    union: Any = Annotated[Union[tuple(members)], Field(discriminator="type")]  # noqa: UP007
    generated = TypeAdapter(union).json_schema(ref_template="#/components/schemas/{model}", mode="validation")
    schemas.update(generated.pop("$defs", {}))
    base = schemas.get("EnqueueRequest", {})
    schemas["EnqueueRequest"] = {
        **generated,
        "title": "EnqueueRequest",
        "description": "A job: its `type` (one of the registered job types) decides the shape of `payload`. "
        + str(base.get("description") or ""),
    }


def _member(job_type: Any, base: type[BaseModel]) -> type[BaseModel]:
    name = "".join(part.capitalize() for part in job_type.name.replace("_", ".").split(".")) + "Job"
    examples = list((job_type.payload_model.model_config.get("json_schema_extra") or {}).get("examples", []))
    fields: dict[str, Any] = {
        "type": (Literal[job_type.name], ...),
        "payload": (job_type.payload_model, ...),
    }
    for field_name in ("run_at", "delay_seconds", "max_attempts"):
        info = base.model_fields[field_name]
        fields[field_name] = (info.annotation, info)
    config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"type": job_type.name, "payload": p} for p in examples]} if examples else None,
    )
    model: type[BaseModel] = create_model(
        name,
        __config__=config,
        __doc__=f"A `{job_type.name}` job (queue `{job_type.queue}`, at most "
        f"{job_type.retry.max_attempts} attempts by default).",
        **fields,
    )
    return model
