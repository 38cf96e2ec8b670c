"""Retention: finished jobs carry a TTL from the deployment's retention parameters; reads hide expired jobs
even before DynamoDB's TTL deletes them (which can take days, and never happens under moto)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.conftest import ROOT, Api
from tests.integration.ops_support import EMAIL, make_job

DAY = 86400


@pytest.fixture
def short_retention():
    """A deployment whose retention parameters differ from the defaults (template Parameters -> env)."""
    from moto import mock_aws

    from conveyor.platform.settings import get_settings
    from conveyor_local.stack import Stack

    with mock_aws():
        get_settings.cache_clear()
        yield Stack(
            ROOT / "template.yaml", parameters={"CompletedRetentionDays": "2", "FailedRetentionDays": "5"}
        ).provision()
        get_settings.cache_clear()


def record(tenant: str, job_id: str):
    from conveyor.jobs import repository

    return repository.get(tenant, job_id, include_expired=True)  # what TTL has not deleted yet


def test_finished_jobs_expire_after_the_deployments_retention_days(short_retention):
    from conveyor.platform.auth import keys

    api = Api(short_retention, keys.create("tenant-a", {"jobs:read", "jobs:write"})[0])
    # Given one job that completes and one that fails at once (SES rejects an unverified sender)
    done = api.post("/v1/jobs", {"type": "email.send", "payload": EMAIL}).json()["id"]
    short_retention.drain()
    short_retention.client("sesv2").delete_email_identity(EmailIdentity="no-reply@example.com")
    failed = api.post("/v1/jobs", {"type": "email.send", "payload": EMAIL}).json()["id"]
    short_retention.drain()

    # Then each expires its own retention after it finished: 2 days when completed, 5 when failed
    completed_job, failed_job = record("tenant-a", done), record("tenant-a", failed)
    assert (completed_job.state, failed_job.state) == ("completed", "failed")
    assert completed_job.expires_at - completed_job.finished_at.timestamp() == pytest.approx(2 * DAY, abs=2)
    assert failed_job.expires_at - failed_job.finished_at.timestamp() == pytest.approx(5 * DAY, abs=2)


def test_expired_jobs_are_hidden_from_reads_and_lists_before_ttl_deletes_them(api):
    now = int(datetime.now(UTC).timestamp())
    # Given a completed job past its expiry (DynamoDB has not deleted it yet) and one still retained
    expired = make_job("tenant-a", "completed", expires_at=now - 1)
    kept = make_job("tenant-a", "completed", expires_at=now + DAY)
    active = make_job("tenant-a", "queued")
    assert record("tenant-a", expired.id) is not None
    # When the tenant reads and lists its jobs
    # Then the expired job is gone from both; the others are there
    assert api.get(f"/v1/jobs/{expired.id}").status == 404
    assert api.get(f"/v1/jobs/{kept.id}").status == 200
    listed = [j["id"] for j in api.get("/v1/jobs?limit=100").json()["items"]]
    assert expired.id not in listed and {kept.id, active.id} <= set(listed)
    assert [j["id"] for j in api.get("/v1/jobs?state=completed").json()["items"]] == [kept.id]


def test_expired_jobs_are_left_out_of_admin_counts_and_bulk_operations(stack, new_key):
    now = int(datetime.now(UTC).timestamp())
    admin = Api(stack, new_key("tenant-a", "admin"))
    expired = make_job("tenant-a", "failed", expires_at=now - 1)
    email = next(q for q in admin.get("/v1/queues").json()["queues"] if q["name"] == "email")
    assert email["jobs"]["by_state"]["failed"] == 0
    assert admin.post("/v1/jobs/retry-failed", {}).json()["changed"] == 0
    assert record("tenant-a", expired.id).state == "failed"
