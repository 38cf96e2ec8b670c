"""email.send end to end: template contexts are data, and SES's acceptance is never sent twice."""

from __future__ import annotations

import json

from factories import email_job


def test_a_template_context_key_named_like_a_python_parameter_renders_as_a_variable(api, stack, sent_emails):
    # Given a welcome email whose context also carries keys named `self` and `args`
    payload = {"to": ["a@example.com"], "template": "welcome", "context": {"name": "Ann", "self": "x", "args": 1}}
    job = api.post("/v1/jobs", email_job(payload=payload)).json()

    # When the worker runs it
    stack.drain()

    # Then it is sent once, on its first attempt (the keys are plain template variables, not a TypeError)
    done = api.get(f"/v1/jobs/{job['id']}").json()
    assert (done["state"], done["attempts"]) == ("completed", 1), done
    assert len(sent_emails()) == 1 and "Ann" in sent_emails()[0].body


def test_a_multibyte_utf8_body_under_the_limit_is_accepted_stored_as_sent_and_runs(api, stack, sent_emails):
    # Given an email whose text is 120,000 non-ASCII characters (240 KB of UTF-8; escaped as \\uXXXX it would be
    # 720 KB, past DynamoDB's 400 KB item limit)
    text = "é" * 100_000 + "😀" * 5_000
    body = email_job(payload={"to": ["a@example.com"], "subject": "Grüße", "text": text})
    raw = json.dumps(body, ensure_ascii=False).encode()
    assert len(raw) < 256 * 1024

    # When it is posted
    response = api.request("POST", "/v1/jobs", raw=raw)

    # Then it is accepted, reads back unchanged, and is sent
    assert response.status == 202, response.body
    job_id = response.json()["id"]
    assert api.get(f"/v1/jobs/{job_id}").json()["payload"]["text"] == text
    stack.drain()
    assert api.get(f"/v1/jobs/{job_id}").json()["state"] == "completed"
    assert len(sent_emails()) == 1


def test_a_payload_is_limited_by_the_bytes_it_takes_stored():
    from conveyor.jobs.service import MAX_PAYLOAD_BYTES
    from conveyor.platform.dynamo import stored_size

    # A compact UTF-8 encoding: a character costs its UTF-8 bytes, never a six-byte escape
    assert stored_size({"t": "é" * 10}) == len('{"t":""}') + 20
    assert MAX_PAYLOAD_BYTES <= 256 * 1024
