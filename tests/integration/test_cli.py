"""`conveyor keys create|revoke`: the operator's way to mint and revoke API keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from factories import email_job

from conveyor.cli import main


def test_a_created_key_works_once_printed_and_stops_working_when_revoked(stack, api, capsys):
    table = stack.template.physical["ApiKeysTable"]

    assert main(["keys", "create", "--tenant", "acme", "--scopes", "jobs:read,jobs:write", "--table", table]) == 0
    out, err = capsys.readouterr()
    key = out.strip()
    assert key.startswith("cvk_") and "shown only this once" in err
    assert api.post("/v1/jobs", email_job(), key=key).status == 202

    assert main(["keys", "revoke", key, "--table", table]) == 0
    assert api.get("/v1/jobs", key=key).status == 200  # API Gateway's cached answer, for up to ReauthorizeEvery
    stack.gateway.expire_authorizer_cache()
    assert api.get("/v1/jobs", key=key).status == 401


def test_the_plain_key_is_never_stored(stack, capsys):
    table = stack.template.physical["ApiKeysTable"]
    main(["keys", "create", "--tenant", "acme", "--scopes", "jobs:read", "--table", table])
    key = capsys.readouterr().out.strip()

    stored = stack.client("dynamodb").scan(TableName=table)["Items"]

    assert len(stored) == 1 and key not in repr(stored)
    assert stored[0]["tenant_id"] == {"S": "acme"}


def test_bad_scopes_and_unknown_keys_are_clear_errors(stack, capsys):
    table = stack.template.physical["ApiKeysTable"]

    assert main(["keys", "create", "--tenant", "acme", "--scopes", "jobs:everything", "--table", table]) == 2
    assert main(["keys", "revoke", "nosuchkeyid1", "--table", table]) == 2
    assert "unknown" in capsys.readouterr().err


def test_a_key_cannot_be_created_already_expired_or_with_a_zero_lifetime(stack, capsys):
    table = stack.template.physical["ApiKeysTable"]
    for days in ("0", "-1"):
        # When an operator asks for a key that expires in 0 (or fewer) days
        code = main(["keys", "create", "--tenant", "acme", "--scopes", "jobs:read", "--expires-in-days", days,
                     "--table", table])  # fmt: skip
        # Then it is refused with the reason, and no key exists that could be used
        assert code == 2
        assert "--expires-in-days must be at least 1" in capsys.readouterr().err
    assert stack.client("dynamodb").scan(TableName=table)["Items"] == []


def test_a_key_made_with_a_zero_lifetime_is_already_expired(stack):
    from conveyor.platform.auth import keys

    key, record = keys.create("acme", {"jobs:read"}, expires_in_days=0)
    assert record.expires_at is not None
    assert keys.authenticate(key) is None


def test_a_key_created_to_expire_in_a_day_expires(stack, capsys, monkeypatch):
    table = stack.template.physical["ApiKeysTable"]
    assert main(["keys", "create", "--tenant", "acme", "--scopes", "jobs:read", "--expires-in-days", "1",
                 "--table", table]) == 0  # fmt: skip
    key = capsys.readouterr().out.strip()
    [stored] = stack.client("dynamodb").scan(TableName=table)["Items"]
    from conveyor.platform.auth import keys

    assert keys.authenticate(key) is not None
    later = datetime.fromtimestamp(int(stored["expires_at"]["N"]) + 1, UTC)
    monkeypatch.setattr(keys, "utcnow", lambda: later)
    assert keys.authenticate(key) is None


# --- many jobs at once: the client's enqueue_many and `conveyor jobs enqueue-many` use POST /v1/jobs/batch -----
def _through_the_gateway(stack, calls: list[str]):
    """An httpx transport that hands each request to the emulated gateway (authorizer + API function)."""
    import httpx

    def handle(request: httpx.Request) -> httpx.Response:
        target = request.url.raw_path.decode()
        calls.append(f"{request.method} {target}")
        answer = stack.gateway.handle(request.method, target, dict(request.headers), request.content)
        return httpx.Response(answer.status, headers=answer.headers, content=answer.body)

    return httpx.MockTransport(handle)


def _emails(count: int) -> list[dict]:
    return [
        email_job(payload={"to": [f"u{i}@example.com"], "template": "welcome", "context": {"name": "U"}})
        for i in range(count)
    ]


def test_the_client_enqueues_250_jobs_in_three_batch_requests_answered_in_order(stack, new_key, sent_emails):
    from conveyor.client import Client

    # Given 250 jobs, the last one repeating the idempotency key of the first
    calls: list[str] = []
    jobs = _emails(250)
    jobs[0] = {**jobs[0], "idempotency_key": "first"}
    jobs[-1] = {**jobs[0]}
    with Client("http://conveyor.test", new_key(), transport=_through_the_gateway(stack, calls)) as client:
        # When they are enqueued with enqueue_many
        results = client.enqueue_many(jobs)

    # Then they went in chunks of 100, and each job has its result at its own index
    assert calls == ["POST /v1/jobs/batch"] * 3
    assert [r["index"] for r in results] == list(range(250))
    assert [r["status"] for r in results] == ["created"] * 249 + ["duplicate"]
    assert results[-1]["job"]["id"] == results[0]["job"]["id"]
    stack.drain()
    assert len(sent_emails()) == 249


def test_the_client_keeps_each_batch_body_under_the_apis_limit(stack, new_key):
    from conveyor.client import Client

    calls: list[str] = []
    big = [email_job(payload={"to": ["a@example.com"], "template": "welcome", "context": {"name": "y" * 20_000}})] * 30
    with Client("http://conveyor.test", new_key(), transport=_through_the_gateway(stack, calls)) as client:
        results = client.enqueue_many(big)
    assert len(calls) > 1 and {r["status"] for r in results} == {"created"} and len(results) == 30


def test_enqueue_many_reads_a_jsonl_file_and_reports_each_line(stack, new_key, tmp_path, capsys, monkeypatch):
    import conveyor.client

    # Given a JSON Lines file with two good jobs and one of an unknown type
    calls: list[str] = []
    transport = _through_the_gateway(stack, calls)
    real = conveyor.client.Client.__init__
    monkeypatch.setattr(
        conveyor.client.Client, "__init__", lambda self, url, key, **kw: real(self, url, key, transport=transport)
    )
    lines = [json.dumps(email_job()), "", json.dumps({"type": "nope"}), json.dumps(email_job(idempotency_key="k"))]
    path = tmp_path / "jobs.jsonl"
    path.write_text("\n".join(lines) + "\n")

    # When the CLI enqueues it
    code = main(["jobs", "enqueue-many", str(path), "--url", "http://conveyor.test", "--key", new_key()])

    # Then one batch request carried them, each job's line says what became of it, and the exit status says
    # that not all were accepted
    out, err = capsys.readouterr()
    assert code == 1 and calls == ["POST /v1/jobs/batch"]
    first, second, third = out.strip().splitlines()
    assert first.startswith("1  created  job_") and third.startswith("4  created  job_")
    assert second.startswith("3  invalid  validation_error: unknown job type 'nope'")
    assert "2 created, 1 invalid" in err


def test_enqueue_many_refuses_a_file_with_a_line_that_is_not_a_job(tmp_path, capsys):
    path = tmp_path / "jobs.jsonl"
    path.write_text(json.dumps(email_job()) + "\n[1, 2]\n")
    assert main(["jobs", "enqueue-many", str(path), "--url", "http://conveyor.test", "--key", "cvk_x"]) == 2
    assert "line 2 must be a JSON object" in capsys.readouterr().err
