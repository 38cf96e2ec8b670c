"""The OpenAPI document is true: it validates, every operation documents its errors with the one error schema, each
job type's payload is in it, and every example it offers succeeds when sent (through the real gateway + handler)."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate

# Path parameters of the example scenario: the resources the examples themselves create, sent first.
PATH_VALUES = {"contact_id": "c_ann", "appointment_id": "appt_rex", "schedule_id": "med_amox", "name": "email"}
FIRST = ("PUT /v1/contacts/{contact_id}", "POST /v1/webhooks", "POST /v1/connections")
# The path parameter an example's answer (its `id`) fills for the examples after it.
CREATED = {"POST /v1/webhooks": "subscription_id", "POST /v1/connections": "connection_id"}


@pytest.fixture
def document(api) -> dict[str, Any]:
    response = api.get("/v1/openapi.json", key=None)
    assert response.status == 200
    return response.json()


def _operations(document: dict[str, Any]):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield path, method, operation


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1")
    validate(document)  # openapi-spec-validator: raises on any violation


def test_every_error_status_of_every_operation_has_the_one_error_schema(document):
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    for path, method, operation in _operations(document):
        for status, response in operation["responses"].items():
            if status[0] in "45" and not (path == "/health/ready" and status == "503"):
                schema = response["content"]["application/json"]["schema"]
                shapes = schema.get("anyOf", [schema])  # API Gateway's own {"message"} answers beside ours
                assert shapes[0]["required"] == ["error"], (method, path, status)
    ready = document["paths"]["/health/ready"]["get"]["responses"]["503"]["content"]["application/json"]["schema"]
    assert ready["anyOf"][0] == {"$ref": "#/components/schemas/Readiness"}, "its own report, then the error shapes"
    assert ready["anyOf"][1]["required"] == ["error"]
    download = document["paths"]["/v1/reports/{report_id}/download"]["get"]["responses"]["409"]
    assert "not ready" in download["description"] and download["content"]["application/json"]["schema"]["required"]


def test_every_success_is_documented_with_its_body_and_answers_without_one_have_none(document):
    for path, method, operation in _operations(document):
        successes = {s: r for s, r in operation["responses"].items() if s[0] in "23"}
        assert successes, (method, path)  # at least one 2xx or 3xx besides the errors and 304
        for status, response in successes.items():
            bodiless = status == "204" or status[0] == "3"
            assert ("content" in response) != bodiless, (method, path, status)
    process = document["paths"]["/v1/processes/{process_id}"]["get"]["responses"]["200"]
    assert process["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ProcessView"}


def test_each_job_type_has_its_payload_schema_in_a_union_on_type(document):
    from conveyor.jobs import registry

    request = document["components"]["schemas"]["EnqueueRequest"]
    assert request["discriminator"]["propertyName"] == "type"
    mapping = request["discriminator"]["mapping"]
    assert set(mapping) == set(registry.names())
    email = document["components"]["schemas"][mapping["email.send"].rsplit("/", 1)[-1]]
    payload = document["components"]["schemas"][email["properties"]["payload"]["$ref"].rsplit("/", 1)[-1]]
    assert payload["required"] == ["to"] and "template" in payload["properties"]


def test_operations_are_tagged_in_order_and_say_their_scope_and_idempotency(document):
    tags = [t["name"] for t in document["tags"]]
    assert tags[:2] == ["health", "jobs"] and all(t["description"] for t in document["tags"])
    firsts = [next(iter(ops.values()))["tags"][0] for ops in document["paths"].values()]
    assert firsts == sorted(firsts, key=tags.index), "paths are grouped by tag, in the tags' order"
    for path, method, operation in _operations(document):
        assert operation["summary"] and "dempoten" in operation["description"], (method, path)
        if path.startswith("/v1/") and operation.get("security") != []:
            assert f"Scope: `{operation['x-required-scope']}`" in operation["description"], (method, path)
        else:  # health, and the CRMs' webhook route (verified by the CRM's own scheme)
            assert "Public: no API key" in operation["description"], (method, path)
            assert path.startswith("/health") or path.endswith("/webhook"), (method, path)
    assert {"/health", "/health/ready"} <= set(document["paths"])


def _examples(document: dict[str, Any]):
    found = []
    for path, method, operation in _operations(document):
        media = (operation.get("requestBody") or {}).get("content", {}).get("application/json", {})
        for name, example in media.get("examples", {}).items():
            found.append((f"{method.upper()} {path}", name, example["value"], operation))
    return sorted(found, key=lambda item: (item[0] not in FIRST, FIRST.index(item[0]) if item[0] in FIRST else 0))


@pytest.fixture
def admin_api(api_as, monkeypatch):
    from conveyor.platform import outbound

    # The CRM connection example names the vendor's real host; saving it resolves that name (no DNS here).
    monkeypatch.setattr(outbound, "system_resolver", lambda host, port: ["151.101.1.1"])
    return api_as("tenant-a", "admin")


def _send_examples(document: dict[str, Any], api: Any):
    """Send every documented example in scenario order; yields (operation, example name, its operation's spec,
    the response, the path values the request used). An example's created `id` fills the paths after it."""
    values = dict(PATH_VALUES)
    for operation, name, body, spec in _examples(document):
        method, path = operation.split(" ", 1)
        used = dict(values)
        response = api.request(method, path.format(**used), body)
        if operation in CREATED:
            values[CREATED[operation]] = response.json()["id"]
        yield operation, name, spec, response, used


def test_every_request_body_has_an_example_and_each_succeeds_when_sent(document, admin_api):
    with_body = {f"{m.upper()} {p}" for p, m, op in _operations(document) if "requestBody" in op}
    assert with_body == {operation for operation, *_ in _examples(document)}, "every body operation has an example"
    for operation, name, spec, response, _ in _send_examples(document, admin_api):
        documented = {int(s) for s in spec["responses"] if s.startswith("2")}
        assert response.status in documented, (operation, name, response.status, response.body[:300])


def test_links_lead_from_each_answer_to_the_resource_it_names(document, admin_api):
    """Every link of every answer the examples get, followed (GET targets): each finds the resource it names
    (a documented answer that is not 404: a report's download is 409 until the export is done)."""
    operations = {op["operationId"]: (m, p, op) for p, m, op in _operations(document)}
    linked = {
        (source, link)
        for source, (_, _, op) in operations.items()
        for response in op["responses"].values()
        for link in response.get("links", {})
    }
    expected = {
        ("enqueue_v1_jobs_post", "get_job_v1_jobs__job_id__get"),
        ("enqueue_v1_jobs_post", "cancel_job_v1_jobs__job_id__cancel_post"),
        ("list_jobs_v1_jobs_get", "retry_job_v1_jobs__job_id__retry_post"),
        ("send_notification_v1_notifications_post", "get_job_v1_jobs__job_id__get"),  # a notification is a job
    }
    assert expected <= linked, expected - linked
    followed = set()
    for operation, name, spec, response, used in _send_examples(document, admin_api):
        for link in spec["responses"].get(str(response.status), {}).get("links", {}).values():
            target_method, target_path, target = operations[link["operationId"]]
            if target_method != "get":
                continue
            parameters = {p: _resolve(e, response.json(), used) for p, e in link["parameters"].items()}
            answer = admin_api.get(target_path.format(**parameters))
            assert answer.status != 404 and str(answer.status) in target["responses"], (operation, name, answer.body)
            followed.add((operation, link["operationId"]))
    assert len(followed) >= 5, followed  # jobs, contacts, webhooks, connections, reports at least


def _resolve(expression: str, body: Any, request_path: dict[str, str]) -> Any:
    """An OpenAPI runtime expression of the two kinds the document uses."""
    if expression.startswith("$request.path."):
        return request_path[expression.removeprefix("$request.path.")]
    found = body
    for part in expression.removeprefix("$response.body#/").split("/"):
        found = found[int(part)] if isinstance(found, list) else found[part]
    return found
