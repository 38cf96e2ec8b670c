"""The HTTP edge, for every route at once: bodies (content type, encoding, nesting), sizes and encoded paths."""

from __future__ import annotations

import json
import re

import pytest
from factories import email_job

ADMIN = "admin,platform,jobs:read,jobs:write,reminders:read,reminders:write"


def test_json_sent_as_curl_sends_it_without_a_content_type_is_accepted(api):
    # Given a JSON body sent the way `curl -d '{...}'` sends it (form-urlencoded), or with no content type at all
    body = json.dumps(email_job()).encode()
    for content_type in ("application/x-www-form-urlencoded", "text/plain", ""):
        # When it is posted
        response = api.post("/v1/jobs", raw=body, headers={"content-type": content_type})
        # Then it is read as the JSON it is
        assert response.status == 202, (content_type, response.json())
        assert response.json()["type"] == "email.send"


def test_a_body_that_is_not_json_is_400_malformed_json_whatever_its_content_type(api):
    for content_type in ("application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json"):
        response = api.post("/v1/jobs", raw=b"type=email.send&payload=x", headers={"content-type": content_type})
        assert response.status == 400, content_type
        assert response.json()["error"]["code"] == "malformed_json"


def test_a_body_that_is_not_utf8_is_400_invalid_encoding(api):
    # Given JSON encoded as Latin-1 (é is the byte 0xE9)
    body = json.dumps(email_job(payload={"to": ["ann@example.com"], "text": "café"}), ensure_ascii=False)
    response = api.post("/v1/jobs", raw=body.encode("latin-1"))
    assert response.status == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_encoding" and "UTF-8" in error["message"]
    assert api.get("/v1/jobs").json()["items"] == []


def test_a_lone_surrogate_escape_in_json_is_400_invalid_encoding(api):
    body = '{"type": "email.send", "payload": {"to": ["ann@example.com"], "text": "\\ud800"}}'
    response = api.post("/v1/jobs", raw=body.encode())
    assert response.status == 400
    assert response.json()["error"]["code"] == "invalid_encoding"


@pytest.mark.parametrize("depth", [33, 5_000, 100_000])
def test_json_nested_deeper_than_dynamodb_stores_is_400_too_deeply_nested(api, depth):
    # Given a job whose payload nests `depth` levels (a document DynamoDB could not hold past 32)
    nested = "[" * depth + "]" * depth
    body = f'{{"type": "email.send", "payload": {{"to": ["ann@example.com"], "context": {{"x": {nested}}}}}}}'
    response = api.post("/v1/jobs", raw=body.encode())
    assert response.status == 400
    assert response.json()["error"] == {
        "code": "too_deeply_nested",
        "message": "the request body nests JSON more than 32 levels deep",
        "details": {"max_depth": 32},
    }


def test_json_nested_within_the_limit_is_accepted(api):
    context = {"x": json.loads("[" * 28 + "]" * 28)}
    response = api.post(
        "/v1/jobs",
        email_job(payload={"to": ["ann@example.com"], "template": "welcome", "context": {"name": "Ann", **context}}),
    )
    assert response.status == 202, response.json()


def test_a_percent_encoded_path_id_is_the_decoded_id(api_as):
    # Given a contact id with a colon, which clients percent-encode in the path
    rapi = api_as("tenant-a", "reminders:read,reminders:write")
    contact = {"name": "Ada", "email": "ada@example.com", "timezone": "Europe/London", "channels": ["email"]}
    # When it is stored under org%3A42
    stored = rapi.request("PUT", "/v1/contacts/org%3A42", contact)
    # Then the id is org:42, found under either spelling
    assert stored.status in (200, 201), stored.json()
    assert stored.json()["id"] == "org:42"
    assert rapi.get("/v1/contacts/org:42").json()["id"] == "org:42"
    assert rapi.get("/v1/contacts/org%3a42").status == 200


def test_a_path_that_does_not_decode_as_utf8_is_400_invalid_encoding(api):
    response = api.get("/v1/jobs/job_%FF%FE")
    assert response.status == 400
    assert response.json()["error"]["code"] == "invalid_encoding"


HOSTILE_BODIES = {
    "latin-1": '{"name": "Jos\xe9"}'.encode("latin-1"),
    "binary": bytes(range(256)),
    "deep": b"[" * 50_000 + b"]" * 50_000,
    "deep-object": b'{"a":' * 40 + b"1" + b"}" * 40,
    "surrogate": b'{"name": "\\udfff"}',
    "not-json": b"name=Ada&email=x",
    "json-scalar": b"42",
    "json-array": b"[1, 2]",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_BODIES))
def test_no_route_answers_500_to_a_hostile_body(stack, new_key, kind):
    # Given every route the template declares, called by a key with every scope
    key = new_key("tenant-a", ADMIN)
    hostile = HOSTILE_BODIES[kind]
    for route in stack.gateway.routes:
        path = re.sub(r"\{[^}]+\}", "x1", route.path)
        for content_type in ("application/json", "application/x-www-form-urlencoded"):
            # When it gets a hostile body
            response = stack.gateway.handle(
                route.method, path, {"authorization": f"Bearer {key}", "content-type": content_type}, hostile
            )
            # Then the answer is a client error (or success for routes that take no body), never a 500
            assert response.status < 500, (route.key, content_type, response.body[:300])
