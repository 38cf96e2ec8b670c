"""Values at the edges of what Python's datetime holds, and cursors that are not ours: 4xx, never a 500.

(Appointments and schedules near year 1 or 9999 are refused where reminders validate them.)"""

from __future__ import annotations

import pytest
from factories import email_job

SCOPES = "admin,jobs:read,jobs:write,reminders:read,reminders:write"
FIRST, LAST = "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"


@pytest.fixture
def admin(api_as):
    return api_as("tenant-a", SCOPES)


@pytest.mark.parametrize("cursor", ["é", "日本", "\u00ff" * 10, "a" * 199 + "é", "%FF"])
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/jobs"), ("DELETE", "/v1/jobs?state=completed&before=2030-01-01T00:00:00Z"), ("GET", "/v1/reminders")],
)
def test_a_cursor_that_is_not_ours_is_400_on_every_cursored_list(admin, method, path, cursor):
    from urllib.parse import quote

    joiner = "&" if "?" in path else "?"
    response = admin.request(method, f"{path}{joiner}cursor={quote(cursor)}")
    assert response.status == 400, response.body
    assert response.json()["error"]["code"] in ("invalid_cursor", "bad_request")


@pytest.mark.parametrize("cursor", ["é", "日本", "a" * 199 + "é"])
def test_retry_failed_with_a_cursor_that_is_not_ours_is_400(admin, cursor):
    response = admin.post("/v1/jobs/retry-failed", {"cursor": cursor})
    assert response.status == 400, response.body


@pytest.mark.parametrize("when", [FIRST, "0001-01-01T00:00:00+14:00", LAST, "9999-12-31T23:59:59-12:00"])
def test_bulk_operations_take_any_datetime_without_a_500(admin, when):
    from urllib.parse import quote

    deleted = admin.request("DELETE", f"/v1/jobs?state=completed&before={quote(when)}")
    retried = admin.post("/v1/jobs/retry-failed", {"since": when})
    assert deleted.status < 500 and retried.status < 500, (deleted.body, retried.body)


@pytest.mark.parametrize("when", [FIRST, "0001-01-01T00:00:00+14:00", LAST, "9999-12-31T23:59:59-12:00"])
def test_reminder_lists_take_any_window_without_a_500(admin, when):
    from urllib.parse import quote

    for query in (f"from={quote(when)}", f"to={quote(when)}", f"from={quote(FIRST)}&to={quote(when)}"):
        response = admin.get(f"/v1/reminders?{query}")
        assert response.status < 500, (query, response.body)


@pytest.mark.parametrize("when", [FIRST, "0001-01-01T09:00:00+09:00", LAST, "9999-12-31T22:00:00Z"])
def test_a_job_run_at_the_ends_of_time_is_a_4xx_or_accepted_never_a_500(admin, when):
    response = admin.post("/v1/jobs", email_job(run_at=when))
    assert response.status < 500, response.body
    if response.status < 300:
        assert admin.get(f"/v1/jobs/{response.json()['id']}").status == 200
