"""Every reminders route is an HttpApi event of ApiFunction in template.yaml (the gateway serves only those)."""

from __future__ import annotations

from typing import Any


def test_openapi_and_the_template_list_the_same_routes(stack: Any) -> None:
    # Given the API's own OpenAPI document, fetched through the gateway like any client would
    response = stack.gateway.handle("GET", "/v1/openapi.json", {}, b"")
    assert response.status == 200
    documented = {(method.upper(), path) for path, item in response.json()["paths"].items() for method in item}

    # And the routes template.yaml gives the API function
    events = stack.functions["ApiFunction"].events.values()
    declared = {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in events if e["Type"] == "HttpApi"}

    # Then every documented route is deployed (and the reminders ones are all there)
    assert documented <= declared, documented - declared
    reminder_prefixes = (
        "/v1/contacts",
        "/v1/appointments",
        "/v1/medication-schedules",
        "/v1/reminder",
        "/v1/notifications",
    )
    reminders = {r for r in documented if r[1].startswith(reminder_prefixes)}
    assert len(reminders) == 14
