"""Values at the edges of what Python's datetime holds, and cursors that are not ours: 4xx, never a 500.

(Appointments near year 1 or 9999: refused where reminders validate them, or planned; never a 500.)"""

from __future__ import annotations

import pytest
from factories import email_job

SCOPES = "admin,jobs:read,jobs:write,reminders:read,reminders:write,processes:read,reports:read"
FIRST, LAST = "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"


@pytest.fixture
def admin(api_as):
    return api_as("tenant-a", SCOPES)


@pytest.mark.parametrize("cursor", ["é", "日本", "\u00ff" * 10, "a" * 199 + "é", "%FF"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/jobs"),
        ("DELETE", "/v1/jobs?state=completed&before=2030-01-01T00:00:00Z"),
        ("GET", "/v1/reminders"),
        ("GET", "/v1/processes"),
        ("GET", "/v1/reports"),
    ],
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


@pytest.mark.parametrize("timezone", ["Asia/Tokyo", "Pacific/Kiritimati", "Pacific/Pago_Pago", "UTC"])
@pytest.mark.parametrize(
    "starts_at", ["0001-01-01T00:30:00Z", "0001-01-02T00:00:00Z", "9999-12-31T22:00:00Z", "9999-12-30T12:00:00Z"]
)
def test_an_appointment_near_year_1_or_9999_is_a_4xx_or_works_never_a_500(admin, timezone, starts_at):
    contact = {"name": "Ada", "email": "ada@example.com", "timezone": timezone, "channels": ["email"]}
    assert admin.request("PUT", "/v1/contacts/c1", contact).status in (200, 201)
    body = {"contact_id": "c1", "subject_name": "Rex", "starts_at": starts_at}
    stored = admin.request("PUT", "/v1/appointments/a1", body)
    assert stored.status < 500, stored.body
    for path in ("/v1/appointments/a1", "/v1/appointments/a1/reminders", "/v1/reminders"):
        assert admin.get(path).status < 500, path
