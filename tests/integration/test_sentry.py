"""Sentry, captured through a test transport (no network): scrubbed events, job failures with job tags,
scheduler cron check-ins, connection-reset noise dropped, the DSN read from SSM or Secrets Manager."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from pydantic import BaseModel

from tests.integration.ops_support import EMAIL

DSN = "https://public@o1.ingest.sentry.io/1"


class CapturingTransport:
    """A sentry_sdk transport that keeps envelopes in memory."""

    def __new__(cls) -> Any:
        from sentry_sdk.transport import Transport

        class _Transport(Transport):
            def __init__(self) -> None:
                super().__init__()
                self.envelopes: list[Any] = []

            def capture_envelope(self, envelope: Any) -> None:
                self.envelopes.append(envelope)

            @property
            def events(self) -> list[dict[str, Any]]:
                return [item.payload.json for env in self.envelopes for item in env.items if item.type == "event"]

            @property
            def check_ins(self) -> list[dict[str, Any]]:
                return [item.payload.json for env in self.envelopes for item in env.items if item.type == "check_in"]

        return _Transport()


@pytest.fixture
def sentry(stack, monkeypatch):
    """Sentry on, as a function with SENTRY_DSN would start it, but delivering to memory."""
    import sentry_sdk

    from conveyor.platform import observability
    from conveyor.platform.settings import load_settings

    monkeypatch.setattr(observability, "_sentry_on", False)
    transport = CapturingTransport()
    settings = load_settings({**_env(stack), "SENTRY_DSN": DSN, "ENVIRONMENT": "production", "RELEASE": "abc123"})
    assert observability.init_sentry(settings, transport=transport)
    yield transport
    sentry_sdk.init()  # no DSN: nothing is sent from here on
    monkeypatch.setattr(observability, "_sentry_on", False)


def _env(stack) -> dict[str, str]:
    return dict(stack.functions["WorkerFunction"].environment)


class Boom(BaseModel):
    patient: str
    email: str
    phone: str


@pytest.fixture
def failing_job_type(monkeypatch):
    """A job type whose handler fails with a message full of personal data."""
    from conveyor.jobs import registry

    def explode(payload: Boom, job: registry.JobContext) -> None:
        raise ConnectionError(f"CRM refused {payload.patient}: call {payload.email} or {payload.phone}")

    registry.get("email.send")  # load the real registry first
    monkeypatch.setitem(
        registry._TYPES,
        "test.explode",
        registry.JobType("test.explode", "sync", Boom, explode, registry.RetryPolicy(max_attempts=2, base_seconds=1)),
    )
    return "test.explode"


def test_job_failures_are_captured_with_job_tags_and_scrubbed(stack, api, sentry, failing_job_type):
    # Given a job whose handler keeps failing with personal data in its error
    job_id = api.post(
        "/v1/jobs",
        {
            "type": failing_job_type,
            "payload": {"patient": "Jane Doe", "email": "jane.doe@example.com", "phone": "+1 555-123-4567"},
        },
    ).json()["id"]
    # When the worker runs it: attempt 1 fails (retry), then the message comes back and attempt 2 fails for good
    stack.drain()
    _redeliver_now(stack, "sync")
    stack.drain()
    assert api.get(f"/v1/jobs/{job_id}").json()["state"] == "failed"

    # Then each failure was captured, tagged with the job, its tenant and the attempt, and the outcome
    events = [e for e in sentry.events if e.get("tags", {}).get("job_id") == job_id]
    assert [(e["tags"]["attempt"], e["tags"]["outcome"], e["level"]) for e in events] == [
        ("1", "retrying", "warning"),
        ("2", "failed", "error"),
    ]
    for event in events:
        assert event["tags"]["job_type"] == "test.explode" and event["tags"]["tenant_id"] == "tenant-a"
        assert event["environment"] == "production" and event["release"] == "abc123"
        value = event["exception"]["values"][-1]["value"]
        assert "[email]" in value and "[phone]" in value
        assert "example.com" not in json.dumps(event) and "555-123" not in json.dumps(event)


def test_permanent_failures_are_captured_too(stack, api, sentry):
    stack.client("sesv2").delete_email_identity(EmailIdentity="no-reply@example.com")  # SES will reject the send
    job_id = api.post("/v1/jobs", {"type": "email.send", "payload": EMAIL}).json()["id"]
    stack.drain()
    (event,) = [e for e in sentry.events if e.get("tags", {}).get("job_id") == job_id]
    assert event["tags"]["outcome"] == "failed" and event["tags"]["error_type"] == "PermanentError"
    assert event["exception"]["values"][-1]["type"] == "PermanentError"


def test_failures_without_an_exception_are_grouped_by_job_type_and_error(stack, sentry):
    from tests.integration.ops_support import make_job

    # Given a queued job whose stored payload no longer validates (it will fail at once, no exception raised)
    job = make_job("tenant-a", "queued", payload={"to": "not-an-address"})
    stack.invoke("WorkerFunction", _sqs_event(stack, job))
    (event,) = [e for e in sentry.events if e.get("tags", {}).get("job_id") == job.id]
    assert event["fingerprint"] == ["job-failure", "email.send", "InvalidPayload"]
    assert event["message"] == "job failed: InvalidPayload"


def test_sensitive_headers_fields_and_contact_details_are_scrubbed(sentry):
    import sentry_sdk

    # When an event carries request headers, a job payload and free text with contact details
    with sentry_sdk.new_scope() as scope:
        scope.set_extra(
            "payload",
            {
                "to": "jane@example.com",
                "password": "hunter2",
                "api_token": "t0k3n",
                "notes": "history of asthma",
                "diagnosis": "J45",
                "treatment": "inhaler",
                "appointment": {"clinical_notes": "follow up", "phone": "+44 7700 900123"},
            },
        )
        scope.set_context(
            "request_headers",
            {
                "Authorization": "Bearer cvk_" + "a" * 52,
                "Cookie": "session=1",
                "X-Api-Key": "secret-key",
                "Content-Type": "application/json",
            },
        )
        sentry_sdk.capture_message("could not reach jane@example.com or (555) 123-4567 with cvk_" + "b" * 52)

    # Then what reaches the transport has none of it
    (event,) = sentry.events
    payload = event["extra"]["payload"]
    assert payload["to"] == "[email]"
    for field in ("password", "api_token", "notes", "diagnosis", "treatment"):
        assert payload[field] == "[Filtered]", field
    assert payload["appointment"]["clinical_notes"] == "[Filtered]"
    assert payload["appointment"]["phone"] == "[phone]"
    headers = event["contexts"]["request_headers"]
    assert headers["Authorization"] == headers["Cookie"] == headers["X-Api-Key"] == "[Filtered]"
    assert headers["Content-Type"] == "application/json"
    assert event["message"] == "could not reach [email] or [phone] with [api-key]"
    for secret in ("hunter2", "t0k3n", "asthma", "J45", "jane@", "7700", "aaaa", "bbbb", "secret-key"):
        assert secret not in json.dumps(event), secret


def test_connection_resets_are_dropped_as_noise(sentry):
    import sentry_sdk

    for exc in (
        ConnectionResetError(104, "Connection reset by peer"),
        OSError("read error: [Errno 104] Connection reset by peer"),
    ):
        try:
            raise exc
        except OSError as raised:
            sentry_sdk.capture_exception(raised)
    sentry_sdk.capture_exception(ValueError("a real bug"))
    assert [e["exception"]["values"][-1]["type"] for e in sentry.events] == ["ValueError"]


def test_each_scheduler_run_is_a_cron_check_in(stack, sentry):
    stack.fire_schedules()
    statuses = [(c["monitor_slug"], c["status"]) for c in sentry.check_ins]
    assert statuses == [("conveyor-scheduler", "in_progress"), ("conveyor-scheduler", "ok")]
    assert sentry.check_ins[0]["monitor_config"]["schedule"] == {"type": "interval", "value": 1, "unit": "minute"}


def test_traces_are_sampled_by_environment():
    from conveyor.platform.observability import traces_sample_rate

    assert traces_sample_rate("production") == 0.1
    assert traces_sample_rate("dev") == 1.0


# --- where the DSN comes from ------------------------------------------------------------------------------
@pytest.fixture
def sentry_off(monkeypatch):
    import sentry_sdk

    from conveyor.platform import observability

    monkeypatch.setattr(observability, "_sentry_on", False)
    yield observability
    sentry_sdk.init()
    monkeypatch.setattr(observability, "_sentry_on", False)


def test_the_dsn_can_come_from_an_ssm_parameter(stack, sentry_off):
    from conveyor.platform.settings import load_settings

    stack.client("ssm").put_parameter(Name="/conveyor/sentry-dsn", Value=DSN, Type="SecureString")
    settings = load_settings({**_env(stack), "SENTRY_DSN_PARAMETER": "/conveyor/sentry-dsn"})
    transport = CapturingTransport()
    assert sentry_off.init_sentry(settings, transport=transport) is True
    sentry_off.report_exception(ValueError("x"), tags={"k": "v"})
    assert len(transport.events) == 1


def test_the_dsn_can_come_from_a_secrets_manager_secret(stack, sentry_off):
    from conveyor.platform.settings import load_settings

    stack.client("secretsmanager").create_secret(Name="conveyor/sentry", SecretString=json.dumps({"dsn": DSN}))
    settings = load_settings({**_env(stack), "SENTRY_DSN_SECRET": "conveyor/sentry"})
    assert sentry_off.init_sentry(settings, transport=CapturingTransport()) is True


def test_an_unreadable_dsn_parameter_leaves_sentry_off_without_failing_the_function(stack, sentry_off):
    from conveyor.platform.settings import load_settings

    settings = load_settings({**_env(stack), "SENTRY_DSN_PARAMETER": "/conveyor/missing"})
    assert sentry_off.init_sentry(settings, transport=CapturingTransport()) is False


def test_without_any_dsn_sentry_stays_off(stack, sentry_off):
    from conveyor.platform.settings import load_settings

    assert sentry_off.init_sentry(load_settings(_env(stack))) is False


# --- helpers -----------------------------------------------------------------------------------------------
def _redeliver_now(stack, family: str) -> None:
    """Wait out the retry's backoff (the test job type's policy makes it one second)."""
    time.sleep(1.1)


def _sqs_event(stack, job) -> dict[str, Any]:
    from conveyor_local.event_sources import SqsSource

    source = next(s for s in stack.sources if isinstance(s, SqsSource) and s.queue_url.endswith("EmailQueue"))
    message = {
        "MessageId": "m-1",
        "ReceiptHandle": "r-1",
        "Body": json.dumps({"tenant_id": job.tenant_id, "job_id": job.id, "type": job.type}),
        # What SQS always sends (the worker's parser model requires it)
        "Attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1700000000000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1700000000001",
        },
    }
    return {"Records": [source._record(message)]}
