from datetime import timedelta

from conveyor.jobs.dispatch import MAX_DELAY_SECONDS, message_for, newly_queued
from conveyor.jobs.domain import Job
from conveyor.platform.clock import utcnow


def _image(state: str, **extra):
    now = "2026-11-21T21:00:00.000000+0000"
    return {
        "tenant_id": {"S": "t"},
        "sk": {"S": "job_1"},
        "type": {"S": "email.send"},
        "queue": {"S": "email"},
        "state": {"S": state},
        "payload": {"S": "{}"},
        "attempts": {"N": "0"},
        "max_attempts": {"N": "3"},
        "created_at": {"S": now},
        "updated_at": {"S": now},
        **extra,
    }


def _record(new, old=None):
    data = {"SequenceNumber": "1", "NewImage": new}
    if old:
        data["OldImage"] = old
    return {"dynamodb": data}


def test_only_transitions_into_queued_are_dispatched():
    assert newly_queued(_record(_image("queued"))) is not None  # enqueued
    assert newly_queued(_record(_image("queued"), _image("scheduled"))) is not None  # released by the sweep
    assert newly_queued(_record(_image("queued"), _image("failed"))) is not None  # retried
    assert newly_queued(_record(_image("queued"), _image("queued"))) is None  # a change while still queued
    assert newly_queued(_record(_image("active"), _image("queued"))) is None
    assert newly_queued({"dynamodb": {"OldImage": _image("queued")}}) is None  # a delete (TTL expiry)


def test_delay_seconds_follow_run_at_within_the_sqs_limit():
    def delay(seconds):
        now = utcnow()
        job = Job(
            tenant_id="t",
            id="job_1",
            type="x",
            queue="q",
            state="queued",
            payload={},
            max_attempts=3,
            created_at=now,
            updated_at=now,
            run_at=utcnow() + timedelta(seconds=seconds) if seconds is not None else None,
        )
        return message_for(job)["DelaySeconds"]

    assert delay(None) == 0
    assert delay(-30) == 0
    assert 115 <= delay(120) <= 120
    assert delay(5000) == MAX_DELAY_SECONDS
