"""The OpenAPI 3.1 document: Powertools' generated one, made true to what the API answers.

Built on the first request for it (never at cold start: the OpenAPI models cost ~80 ms of imports), cached.
What it adds to the generated document, and why:
- (the error answers of every operation, in the one error format, come from the resolver itself:
  `platform.http.errors.document`, beside the error table; Powertools' unused `{"detail"}` schemas are dropped)
- tags per capability, health first, each operation's scope, idempotency and description; `security: []` on
  the public routes (health, and a /v1 route that says `openapi_extensions={"x-public": "<how it is verified>"}`);
  a route's own idempotency sentence where it has one (`openapi_extensions={"x-idempotency": "..."}`);
- `POST /v1/jobs`'s body as a discriminated union on `type`, one member per registered job type with its
  payload's schema (adding a job type adds its member);
- each request body's examples (the models' `examples`) as media-type examples, so Swagger UI offers them;
- OpenAPI links from every answer that carries a resource (or a page of them) to the operations on that resource,
  so a client (and Schemathesis's stateful phase) knows `POST /v1/jobs`'s `id` is `GET /v1/jobs/{job_id}`'s.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

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
    "processes": "Long-running work in batches with exact counts, progress, rate and ETA: start, follow, pause, "
    "resume, cancel, its errors and children. Scopes: processes:read, processes:write.",
    "sync": "CRM sync (Zoho CRM, Pipedrive, HubSpot): connectors, connections, initial and delta syncs (each a "
    "process), the CRM's webhooks. Scopes: sync:read, sync:write.",
    "reports": "CSV and Excel exports streamed to S3 as processes, with progress and a download link. Scopes: "
    "reports:read, reports:write (and the read scope of the data reported on).",
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
    _job_union(schemas)
    routes = {(r.openapi_path, r.method.lower()): r for r in _routes(app)}
    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            route = routes.get((path, method))
            _describe(path, method, operation, route)
            _examples(operation, schemas)
    _links(doc["paths"], schemas)
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
    public = operation.pop("x-public", None)  # a /v1 route a third party calls (`openapi_extensions`)
    if not path.startswith("/v1/") or public:
        operation["security"] = []
        lines.append(f"Public: no API key{'; ' + public if public else ''}.")
    else:
        scope = _scope(route)
        if scope:
            operation["x-required-scope"] = scope
            lines.append(f"Scope: `{scope}`." if scope == "admin" else f"Scope: `{scope}` (or `admin`).")
    params = {p.get("name") for p in operation.get("parameters", [])}
    idempotency = operation.pop("x-idempotency", None)  # a route's own rule (`openapi_extensions`): a batch's items
    if idempotency:
        lines.append(idempotency)
    elif "idempotency-key" in params:
        lines.append(
            "Idempotency: send an `Idempotency-Key` header; a repeat with the same key and body answers 200 with "
            "the first result instead of doing it again (a different body under that key: 409)."
        )
    elif method in IDEMPOTENT_METHODS:
        lines.append("Idempotent: repeating it has the same effect as doing it once.")
    else:
        lines.append("Not idempotent: a repeat acts again (it may answer 409 if the state has moved on).")
    operation["description"] = "\n\n".join(line for line in lines if line)


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


# --- links: from an answer carrying a resource to the operations on it ------------------------------------
def _links(paths: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Each 2xx answer that is a resource (a schema with an `id`), or a page of `items` of one, links to the
    operations on that resource: those at or under its home path, whose last parameter its `id` fills.

    A resource's home is the deepest `.../{param}` path of the operations answering its schema (a delivery:
    /v1/webhooks/{subscription_id}/deliveries/{delivery_id}, though `.../test` answers one too); else, for an
    answer at a collection path C, C's one `C/{param}` child (POST /v1/connections answers `Created`). The home's
    other parameters come from a same-named field of the answer (a delivery's `subscription_id`) or else from the
    request's own path."""
    homes: dict[str, str] = {}
    for path, operations in paths.items():
        for operation in operations.values():
            name, pointer = _answer_schema(operation, schemas)
            if name and not pointer and "{" in path and "id" in _props(name, schemas):
                home = path[: path.rindex("}") + 1]
                if home.count("{") > homes.get(name, "").count("{"):
                    homes[name] = home
    for path, operations in paths.items():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                name, pointer = _answer_schema(operation, schemas, status)
                home = homes.get(name) or _child(path, paths)
                if status.startswith("2") and name and home and "id" in _props(name, schemas):
                    links = _links_to(home, paths, pointer, _props(name, schemas), operation)
                    if links:
                        response["links"] = links


def _answer_schema(operation: dict[str, Any], schemas: dict[str, Any], status: str = "") -> tuple[str, str]:
    """(schema name, JSON pointer to the resource) of a JSON answer (`status`, else the first 2xx) that is one
    resource or a page of them; ("", "") for any other answer."""
    responses = operation.get("responses") or {}
    status = status or next((s for s in responses if s.startswith("2")), "")
    media = ((responses.get(status) or {}).get("content") or {}).get("application/json") or {}
    name = _ref_name(media.get("schema") or {})
    item = _ref_name(_props(name, schemas).get("items", {}).get("items", {}))
    return (item, "/items/0") if item else (name, "")


def _ref_name(schema: dict[str, Any]) -> str:
    return str(schema.get("$ref", "")).rsplit("/", 1)[-1]


def _props(name: str, schemas: dict[str, Any]) -> dict[str, Any]:
    return dict(schemas.get(name, {}).get("properties") or {})


def _child(path: str, paths: dict[str, Any]) -> str:
    """A collection path's one `path/{param}` child, if it has exactly one."""
    children = [p for p in paths if p.startswith(path + "/{") and p.count("/") == path.count("/") + 1]
    return children[0] if len(children) == 1 else ""


def _links_to(
    home: str, paths: dict[str, Any], pointer: str, fields: dict[str, Any], source: dict[str, Any]
) -> dict[str, Any]:
    *outer, last = [segment[1:-1] for segment in home.split("/") if segment.startswith("{")]
    own = {p.get("name") for p in source.get("parameters", []) if p.get("in") == "path"}
    parameters = {last: f"$response.body#{pointer}/id"}
    for name in outer:
        if name in fields:
            parameters[name] = f"$response.body#{pointer}/{name}"
        elif name in own:
            parameters[name] = f"$request.path.{name}"
        else:
            return {}  # nothing in this answer or request names it
    links = {}
    for path, operations in paths.items():
        under = path == home or path.startswith(home + "/")
        if not under or path.count("{") != home.count("{"):  # not a deeper resource (a delivery of a subscription)
            continue
        for target in operations.values():
            if target is not source and target.get("operationId"):
                links[target["operationId"]] = {"operationId": target["operationId"], "parameters": parameters}
    return links


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
