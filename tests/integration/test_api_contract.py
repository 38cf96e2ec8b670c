"""The API keeps to its OpenAPI document (what schemathesis checks, `make fuzz`): every answer an operation can
give is documented, and what the document calls invalid is refused (4xx), never taken in some other reading."""

from __future__ import annotations

from typing import Any

import pytest
from factories import email_job

SCOPES = "admin,jobs:read,jobs:write,reminders:read,reminders:write,webhooks:read,webhooks:write"


@pytest.fixture
def admin(api_as: Any) -> Any:
    return api_as("tenant-a", SCOPES)


def test_every_operation_documents_the_errors_it_can_answer_and_a_204_has_no_body(api: Any) -> None:
    # Given the API's OpenAPI document
    document = api.get("/v1/openapi.json", key=None).json()
    operations = [(m, p, op) for p, ops in document["paths"].items() for m, op in ops.items()]
    assert len(operations) > 30

    for method, path, operation in operations:
        responses = operation["responses"]
        # Then each names the edge's and the error table's answers, in the one error format
        for status in ("400", "401", "403", "404", "422", "429", "500"):
            assert status in responses, (method, path, status)
        error = responses["404"]["content"]["application/json"]["schema"]
        assert error["required"] == ["error"], (method, path)
        if method != "get":
            assert "409" in responses, (method, path)
        if "requestBody" in operation:
            assert "413" in responses, (method, path)
        # And an answer without a body is not documented as JSON
        if "204" in responses:
            assert "content" not in responses["204"], (method, path)
    assert "204" in document["paths"]["/v1/jobs/{job_id}"]["delete"]["responses"]


@pytest.mark.parametrize(
    ("path", "body"),
    [("/v1/jobs", [email_job()]), ("/v1/jobs/retry-failed", [{}, {"anything": 1}]), ("/v1/jobs/retry-failed", [{}])],
)
def test_a_json_array_body_is_refused_not_read_as_its_first_element(admin: Any, path: str, body: Any) -> None:
    # When a route that takes a JSON object is sent an array (of objects it would take one by one)
    response = admin.post(path, body)
    # Then it is a 422 saying so, and nothing was done
    assert response.status == 422, response.body
    assert "object" in response.json()["error"]["message"]
    assert admin.get("/v1/jobs").json()["items"] == []


@pytest.mark.parametrize("value", ["0", "0.5", "1700000000", "true"])
def test_an_instant_is_iso_8601_text_never_a_number_of_seconds(admin: Any, value: str) -> None:
    # When a list is bounded by a number where the document asks for a date-time, Then it is refused
    assert admin.get(f"/v1/jobs?created_from={value}").status == 422
    assert admin.get(f"/v1/reminders?to={value}").status == 422
    # And so is a body's instant
    contact = {"name": "Ada", "email": "ada@example.com", "timezone": "Europe/London", "channels": ["email"]}
    assert admin.request("PUT", "/v1/contacts/c1", contact).status in (200, 201)
    appointment = {"contact_id": "c1", "subject_name": "Rex", "starts_at": 0}
    assert admin.request("PUT", "/v1/appointments/a1", appointment).status == 422
    assert admin.post("/v1/jobs", email_job(run_at=1_900_000_000)).status == 422


@pytest.mark.parametrize("value", [True, "3"])
def test_an_integer_field_takes_an_integer_not_a_boolean_or_a_string(admin: Any, value: Any) -> None:
    assert admin.post("/v1/jobs", {**email_job(), "max_attempts": value}).status == 422
    assert admin.post("/v1/jobs/retry-failed", {"limit": value}).status == 422
    assert admin.get("/v1/jobs").json()["items"] == []
