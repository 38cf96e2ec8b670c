"""/v1/webhooks: subscriptions per tenant, the secret shown once and stored encrypted, scopes, isolation,
URL vetting, and the event catalogue in the OpenAPI document."""

from __future__ import annotations

import pytest
from support import subscribe

from conveyor.webhooks import repository


def test_the_secret_is_shown_once_and_stored_only_encrypted(api, stack, caplog):
    created = subscribe(api, "http://127.0.0.1:9/hook", ["job.*", "contact.created"], description="CRM")

    assert created["secret"].startswith("whsec_")
    fetched = api.get(f"/v1/webhooks/{created['id']}").json()
    assert "secret" not in fetched and fetched["active_secrets"] == 1
    assert fetched["event_types"] == ["job.*", "contact.created"] and fetched["enabled"] is True
    raw = stack.client("dynamodb").scan(TableName=stack.template.physical["WebhooksTable"])["Items"]
    assert created["secret"] not in str(raw) and created["secret"][6:] not in str(raw)
    [stored] = repository.get_subscription("tenant-a", created["id"]).secrets
    kms = stack.client("kms")
    with pytest.raises(kms.exceptions.InvalidCiphertextException):  # bound to its tenant and subscription
        kms.decrypt(CiphertextBlob=stored.ciphertext, EncryptionContext={"tenant_id": "tenant-b"})
    assert created["secret"] not in caplog.text


def test_rotation_returns_the_new_secret_once_and_both_sign_during_the_grace(api):
    created = subscribe(api, "http://127.0.0.1:9/hook")
    rotated = api.post(f"/v1/webhooks/{created['id']}/rotate-secret", {"grace_seconds": 3600}).json()

    assert rotated["secret"] != created["secret"] and rotated["active_secrets"] == 2
    assert api.post(f"/v1/webhooks/{created['id']}/rotate-secret", {"grace_seconds": 8 * 86400}).status == 422


def test_unknown_event_types_and_bad_patterns_are_refused(api):
    unknown = api.post("/v1/webhooks", {"url": "http://127.0.0.1:9/h", "event_types": ["contact.exploded"]})
    assert unknown.status == 422 and "contact.exploded" in unknown.json()["error"]["message"]
    assert api.post("/v1/webhooks", {"url": "http://127.0.0.1:9/h", "event_types": ["Contact!"]}).status == 422
    assert api.post("/v1/webhooks", {"url": "http://127.0.0.1:9/h", "event_types": []}).status == 422


def test_patch_changes_settings_and_switches_a_subscription_off_and_on(api):
    created = subscribe(api, "http://127.0.0.1:9/hook")
    path = f"/v1/webhooks/{created['id']}"

    off = api.request("PATCH", path, {"enabled": False, "event_types": ["*"], "description": "all"}).json()
    assert off["enabled"] is False and off["event_types"] == ["*"] and off["description"] == "all"
    on = api.request("PATCH", path, {"enabled": True, "description": None}).json()
    assert on["enabled"] is True and on["description"] is None and on["event_types"] == ["*"]
    assert api.request("DELETE", path).status == 204
    assert api.get(path).status == 404


def test_scopes_are_required(api_as):
    reader = api_as("tenant-a", "webhooks:read")
    jobs_only = api_as("tenant-a", "jobs:read,jobs:write")

    assert reader.get("/v1/webhooks").status == 200
    assert reader.post("/v1/webhooks", {"url": "http://127.0.0.1:9/h", "event_types": ["*"]}).status == 403
    assert jobs_only.get("/v1/webhooks").status == 403


def test_a_tenant_never_sees_another_tenants_subscriptions(api_as):
    a, b = api_as("tenant-a"), api_as("tenant-b")
    created = subscribe(a, "http://127.0.0.1:9/hook")

    assert b.get("/v1/webhooks").json()["items"] == []
    for method, path, body in [
        ("GET", f"/v1/webhooks/{created['id']}", None),
        ("PATCH", f"/v1/webhooks/{created['id']}", {"enabled": False}),
        ("DELETE", f"/v1/webhooks/{created['id']}", None),
        ("POST", f"/v1/webhooks/{created['id']}/rotate-secret", {}),
        ("GET", f"/v1/webhooks/{created['id']}/deliveries", None),
        ("POST", f"/v1/webhooks/{created['id']}/test", {"event_type": "job.completed"}),
    ]:
        assert b.request(method, path, body).status == 404, (method, path)
    assert a.get(f"/v1/webhooks/{created['id']}").json()["enabled"] is True


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/h", "https://10.0.0.1/h", "https://169.254.169.254/latest", "https://[::1]/h",
     "https://[::ffff:127.0.0.1]/h", "https://user:pw@1.1.1.1/h"],
)  # fmt: skip
def test_a_deployment_refuses_private_and_plain_http_urls(api, monkeypatch, url):
    from conveyor.platform.settings import get_settings

    monkeypatch.setenv("OUTBOUND_ALLOW_PRIVATE", "false")
    get_settings.cache_clear()
    response = api.post("/v1/webhooks", {"url": url, "event_types": ["*"]})
    assert response.status == 422, response.body
    assert api.post("/v1/webhooks", {"url": "https://1.1.1.1/hook", "event_types": ["*"]}).status == 201
    get_settings.cache_clear()


def test_even_the_local_stack_refuses_the_metadata_address(api):
    response = api.post("/v1/webhooks", {"url": "http://169.254.169.254/latest/meta-data", "event_types": ["*"]})
    assert response.status == 422 and "metadata" in response.json()["error"]["message"]


REQUIRED_TYPES = [
    "job.completed", "job.failed", "reminder.sent", "reminder.failed", "notification.delivered",
    "appointment.created", "appointment.updated", "appointment.cancelled",
    "contact.created", "contact.updated", "contact.deleted", "webhook.endpoint.disabled",
]  # fmt: skip


def test_every_event_type_has_a_json_schema_in_the_openapi_document(api):
    schemas = api.get("/v1/openapi.json", key=None).json()["components"]["schemas"]
    catalogue = api.get("/v1/webhooks/event-types").json()["items"]

    assert set(REQUIRED_TYPES) <= {item["type"] for item in catalogue}
    for item in catalogue:
        name = "".join(p.capitalize() for p in item["type"].split(".")) + "Event"
        schema = schemas[name]
        assert schema["properties"]["type"]["const"] == item["type"], name
        assert {"id", "type", "timestamp", "tenant_id", "data"} <= set(schema["required"])
        assert item["sample"]["type"] == item["type"]


@pytest.mark.parametrize("cursor", ["é", "%FF", "%C3%9B%F1%85%8F%BD", "0" * 200, "x"])
def test_a_deliveries_cursor_that_is_not_ours_is_400(api, cursor):
    # Given a subscription
    subscription = subscribe(api, "http://127.0.0.1:9/h")
    # When its deliveries are listed with a cursor this API never issued (garbage, non-ASCII, invalid UTF-8)
    response = api.get(f"/v1/webhooks/{subscription['id']}/deliveries?cursor={cursor}")
    # Then it is a 400 naming the cursor, never a 500
    assert response.status == 400, response.body
    assert "cursor" in response.json()["error"]["message"]


@pytest.mark.parametrize("since", [0, "0", False])
def test_a_recovery_job_takes_its_since_only_as_an_iso_date_time(api, since):
    # Given a subscription, and a recovery enqueued as a job whose `since` is a number (pydantic alone would read
    # it as seconds since 1970 and replay every delivery the retention kept)
    subscription = subscribe(api, "http://127.0.0.1:9/h")
    body = {"type": "webhook.recover", "payload": {"subscription_id": subscription["id"], "since": since}}
    # Then it is refused as the documented date-time format says
    response = api.post("/v1/jobs", body)
    assert response.status == 422, response.body
    assert response.json()["error"]["details"][0]["loc"][-1] == "since"


def test_a_delivery_job_takes_its_attempt_count_only_as_an_integer(api):
    # Given a delivery enqueued as a job whose expected attempt count is a boolean (pydantic alone reads false as 0)
    subscription = subscribe(api, "http://127.0.0.1:9/h")
    payload = {"subscription_id": subscription["id"], "delivery_id": "dlv_x", "expected_attempts": False}
    # Then it is refused, as the documented integer type says
    response = api.post("/v1/jobs", {"type": "webhook.deliver", "payload": {**payload, "trigger": "scheduled"}})
    assert response.status == 422, response.body
    assert response.json()["error"]["details"][0]["loc"][-1] == "expected_attempts"
