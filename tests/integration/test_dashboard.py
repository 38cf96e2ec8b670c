"""The dashboard through the emulated HTTP API (moto, in process): sessions, CSRF, scopes, and that its actions are
the API's own use cases. The browser tests (tests/e2e/test_e2e_dashboard.py) cover the same from the outside."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import DashboardBrowser as Browser
from factories import email_job


@pytest.fixture
def browser(stack: Any) -> Browser:
    return Browser(stack)


@pytest.fixture
def api(api_as: Any) -> Any:
    """tenant-a with the scopes notification jobs need (their type asks for reminders scopes over /v1/jobs)."""
    return api_as("tenant-a", "jobs:read,jobs:write,reminders:read,reminders:write")


def failed_job(api: Any, contact_id: str = "nobody") -> str:
    """A notification job for a missing contact: fails permanently when the worker runs it."""
    job = api.post(
        "/v1/jobs", {"type": "notification.send", "payload": {"contact_id": contact_id, "text": "x", "subject": "y"}}
    )
    assert job.status == 202, job.body
    api.stack.drain()
    assert api.get(f"/v1/jobs/{job.json()['id']}").json()["state"] == "failed"
    return job.json()["id"]


# --- sessions ------------------------------------------------------------------------------------------------
def test_signing_in_sets_a_strict_session_cookie_and_never_echoes_the_key(browser, new_key):
    key = new_key("tenant-a", "jobs:read,reminders:read")

    response = browser.sign_in(key)

    assert response.status == 303 and response.headers["location"] == "/dashboard"
    (session,) = [c for c in response.cookies if c.startswith("conveyor_session=")]
    for flag in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/dashboard", "Max-Age=28"):
        assert flag in session
    assert key not in session
    page = browser.get("/dashboard")
    assert page.status == 200 and key not in page.body.decode()
    assert "tenant-a" in page.body.decode()


def test_pages_without_a_session_go_to_sign_in_and_live_parts_say_so(browser):
    assert (
        browser.get("/dashboard/queues/email").headers["location"]
        == "/dashboard/signin?next=%2Fdashboard%2Fqueues%2Femail"
    )
    assert browser.get("/dashboard").headers["location"] == "/dashboard/signin"
    live = browser.get("/dashboard/live/overview", **{"hx-request": "true"})
    assert live.status == 401 and live.headers["hx-redirect"] == "/dashboard/signin"


@pytest.mark.parametrize(
    ("asked", "lands"),
    [
        ("/dashboard/reports/rpt_1/download", "/dashboard/reports/rpt_1/download"),
        ("https://evil.example/x", "/dashboard"),
        ("//evil.example/x", "/dashboard"),
        ("", "/dashboard"),
    ],
)
def test_sign_in_continues_to_the_page_asked_for_but_only_within_the_dashboard(browser, new_key, asked, lands):
    page = browser.get("/dashboard/signin" + (f"?next={asked}" if asked else ""))
    token = re.search(r'name="csrf" value="([^"]+)"', page.body.decode()).group(1)

    done = browser.post("/dashboard/signin", {"csrf": token, "key": new_key("tenant-a", "jobs:read"), "next": asked})

    if lands == "/dashboard":
        assert done.status == 303 and done.headers["location"] == "/dashboard"
    else:  # a page that navigates itself: the CSP's form-action would stop a redirect of the POST leaving the site
        assert done.status == 200 and f'content="0;url={lands}"' in done.body.decode()


def test_a_tampered_or_foreign_cookie_is_refused(browser, new_key):
    browser.sign_in(new_key("tenant-a", "jobs:read,reminders:read"))
    good = browser.cookies["conveyor_session"]
    version, session_id, key_id, expires, mac = good.split(".")
    other_key = new_key("tenant-b", "jobs:read,jobs:write,admin")
    for forged in (
        ".".join((version, session_id, other_key[4:16], expires, mac)),  # another key's id, same signature
        ".".join((version, session_id, key_id, str(int(expires) + 86400), mac)),  # extended
        ".".join((version, session_id, key_id, expires, "A" * 43)),  # re-signed without the secret
        "garbage",
    ):
        browser.cookies["conveyor_session"] = forged
        assert browser.get("/dashboard").status == 303, forged


def test_an_expired_session_is_refused(browser, new_key, monkeypatch):
    from conveyor.platform.auth import sessions

    browser.sign_in(new_key("tenant-a", "jobs:read,reminders:read"))
    later = datetime.now(UTC) + sessions.SESSION_LIFETIME + timedelta(seconds=1)
    monkeypatch.setattr(sessions, "_now", lambda: later)
    assert browser.get("/dashboard").status == 303


def test_signing_out_ends_the_session_on_the_server(browser, new_key):
    browser.sign_in(new_key("tenant-a", "jobs:read,reminders:read"))
    copy = dict(browser.cookies)

    assert browser.post("/dashboard/signout", {"csrf": browser.csrf()}).status == 303

    browser.cookies = copy  # a copy of the cookie kept somewhere
    assert browser.get("/dashboard").status == 303


def test_revoking_the_key_ends_its_sessions(browser, new_key):
    from conveyor.platform.auth import keys

    key = new_key("tenant-a", "jobs:read,reminders:read")
    browser.sign_in(key)
    assert browser.get("/dashboard").status == 200

    keys.revoke(key)

    assert browser.get("/dashboard").status == 303


def test_a_sign_in_link_works_once_and_for_a_minute(stack, new_key, monkeypatch):
    from conveyor.platform.auth import keys, sessions

    key_id = keys.key_id_of(new_key("tenant-a", "jobs:read,reminders:read"))
    token = sessions.create_link(key_id)
    first, second = Browser(stack), Browser(stack)

    assert first.get(f"/dashboard/signin/link?token={token}").status == 200
    assert first.get("/dashboard").status == 200
    assert second.get(f"/dashboard/signin/link?token={token}").status == 401

    stale = sessions.create_link(key_id)
    later = datetime.now(UTC) + sessions.LINK_LIFETIME + timedelta(seconds=1)
    monkeypatch.setattr(sessions, "_now", lambda: later)
    assert Browser(stack).get(f"/dashboard/signin/link?token={stale}").status == 401


def test_the_sign_in_form_needs_its_own_token(browser, new_key):
    response = browser.post("/dashboard/signin", {"key": new_key("tenant-a", "jobs:read,reminders:read")})
    assert response.status == 403 and "conveyor_session" not in browser.cookies


# --- CSRF and scopes --------------------------------------------------------------------------------------------
def test_a_state_changing_request_without_the_csrf_token_is_refused(browser, api, new_key):
    job_id = failed_job(api)
    browser.sign_in(new_key("tenant-a", "jobs:read,jobs:write,reminders:read,reminders:write"))

    assert browser.post(f"/dashboard/jobs/{job_id}/retry").status == 403
    assert browser.post(f"/dashboard/jobs/{job_id}/retry", {"csrf": "wrong"}).status == 403
    other = Browser(browser.stack)
    other.sign_in(new_key("tenant-a", "jobs:read,jobs:write,reminders:read,reminders:write"))
    assert browser.post(f"/dashboard/jobs/{job_id}/retry", {"csrf": other.csrf()}).status == 403  # another session's
    assert api.get(f"/v1/jobs/{job_id}").json()["state"] == "failed"

    assert browser.post(f"/dashboard/jobs/{job_id}/retry", {}, **{"x-csrf-token": browser.csrf()}).status == 303
    assert api.get(f"/v1/jobs/{job_id}").json()["state"] == "queued"


def test_a_read_only_key_gets_no_buttons_and_forged_actions_are_refused(browser, api, new_key):
    job_id = failed_job(api)
    browser.sign_in(new_key("tenant-a", "jobs:read,reminders:read"))
    csrf = browser.csrf()

    page = browser.get(f"/dashboard/jobs/{job_id}").body.decode()
    assert "Retry" not in page and 'method="post"' not in page.split("<main", 1)[1]
    grid = browser.get("/dashboard/queues/notifications?state=failed").body.decode()
    assert job_id in grid and "Retry selected" not in grid and 'name="ids"' not in grid

    for path, form in (
        (f"/dashboard/jobs/{job_id}/retry", {}),
        ("/dashboard/queues/notifications/bulk", {"action": "retry", "ids": [job_id]}),
        ("/dashboard/queues/notifications/bulk-matching", {"action": "retry", "state": "failed"}),
        ("/dashboard/queues/notifications/pause", {}),
        ("/dashboard/queues/notifications/redrive", {}),
    ):
        response = browser.post(path, {"csrf": csrf, **form})
        assert response.status == 403, path
    assert api.get(f"/v1/jobs/{job_id}").json()["state"] == "failed"


def test_pausing_needs_the_platform_scope_as_in_the_api(stack, new_key):
    admin, operator = Browser(stack), Browser(stack)
    admin.sign_in(new_key("tenant-a", "jobs:read,reminders:read,admin"))
    operator.sign_in(new_key("ops", "jobs:read,admin,platform"))

    assert "Pause the worker" not in admin.get("/dashboard/queues/email").body.decode()
    refused = admin.post("/dashboard/queues/email/pause", {"csrf": admin.csrf()})
    assert refused.status == 403 and "platform" in refused.body.decode()

    assert "Pause the worker" in operator.get("/dashboard/queues/email").body.decode()
    assert operator.post("/dashboard/queues/email/pause", {"csrf": operator.csrf()}).status == 303
    page = operator.get("/dashboard/queues/email").body.decode()
    assert "Resume the worker" in page and "paused" in page
    assert operator.post("/dashboard/queues/email/resume", {"csrf": operator.csrf()}).status == 303


def test_a_tenant_sees_and_acts_on_only_its_own_jobs(stack, api, api_as, new_key):
    job_id = failed_job(api)  # tenant-a's
    intruder = Browser(stack)
    intruder.sign_in(new_key("tenant-b", "jobs:read,jobs:write,reminders:read,reminders:write"))

    assert intruder.get(f"/dashboard/jobs/{job_id}").status == 404
    searched = intruder.get(f"/dashboard/queues/notifications?state=failed&q={job_id}").body.decode()
    assert f'data-job="{job_id}"' not in searched and "No job of yours" in searched
    assert intruder.post(f"/dashboard/jobs/{job_id}/retry", {"csrf": intruder.csrf()}).status == 404


# --- the same use cases as the API ------------------------------------------------------------------------------
def test_run_now_and_delete_are_api_routes_too(api):
    job = api.post("/v1/jobs", email_job(delay_seconds=3600)).json()
    assert job["state"] == "scheduled"

    ran = api.post(f"/v1/jobs/{job['id']}/run-now")
    assert ran.status == 200 and ran.json()["state"] == "queued"
    assert api.post(f"/v1/jobs/{job['id']}/run-now").status == 409
    assert api.request("DELETE", f"/v1/jobs/{job['id']}").status == 409  # not finished yet

    api.stack.drain()
    assert api.get(f"/v1/jobs/{job['id']}").json()["state"] == "completed"
    assert api.request("DELETE", f"/v1/jobs/{job['id']}").status == 204
    assert api.get(f"/v1/jobs/{job['id']}").status == 404


def test_the_job_list_filters_by_queue_and_creation_time(api):
    email = api.post("/v1/jobs", email_job()).json()
    notification = api.post(
        "/v1/jobs", {"type": "notification.send", "payload": {"contact_id": "c", "subject": "s", "text": "t"}}
    ).json()

    by_queue = api.get("/v1/jobs?queue=notifications").json()["items"]
    assert [j["id"] for j in by_queue] == [notification["id"]]
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    assert api.get(f"/v1/jobs?created_from={later}").json()["items"] == []
    oldest = api.get("/v1/jobs?order=oldest").json()["items"]
    assert [j["id"] for j in oldest] == [email["id"], notification["id"]]


def test_a_queue_tab_whose_page_read_no_match_says_the_next_page_reads_on(browser, api, new_key, monkeypatch):
    from conveyor.platform import dynamo

    # Given one scheduled email job under three newer queued ones, and pages that read at most 2 jobs
    scheduled = api.post("/v1/jobs", email_job(delay_seconds=3600)).json()["id"]
    for _ in range(3):
        api.post("/v1/jobs", email_job())
    monkeypatch.setattr(dynamo, "MAX_EXAMINED", 2)
    browser.sign_in(new_key("tenant-a", "jobs:read"))

    # When the email queue's scheduled tab is opened
    first = browser.get("/dashboard/queues/email?state=scheduled").body.decode()

    # Then its first page says it found none yet (not "no scheduled jobs") and links the next, which has the job
    assert "the next page reads on" in first and "No scheduled jobs" not in first and scheduled not in first
    following = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    assert scheduled in browser.get(following).body.decode()


def test_bulk_retry_of_selected_rows_uses_the_retry_use_case(stack, api, new_key):
    ids = [failed_job(api, f"nobody-{i}") for i in range(3)]
    browser = Browser(stack)
    browser.sign_in(new_key("tenant-a", "jobs:read,jobs:write,reminders:read,reminders:write"))
    done = failed_job(api, "nobody-done")
    api.post(f"/v1/jobs/{done}/retry")  # already queued again: the bulk retry must skip it, not double it

    response = browser.post(
        "/dashboard/queues/notifications/bulk", {"csrf": browser.csrf(), "action": "retry", "ids": [*ids, done]}
    )

    assert response.status == 303 and "changed=3" in response.headers["location"]
    assert "skipped=1" in response.headers["location"]
    assert {api.get(f"/v1/jobs/{i}").json()["state"] for i in ids} == {"queued"}


def test_search_finds_a_job_by_its_idempotency_key(stack, api, new_key):
    job = api.post("/v1/jobs", email_job(), headers={"idempotency-key": "order-77"}).json()
    browser = Browser(stack)
    browser.sign_in(new_key("tenant-a", "jobs:read,reminders:read"))

    page = browser.get("/dashboard/queues/email?q=order-77").body.decode()

    assert f'data-job="{job["id"]}"' in page


def test_the_overview_counts_per_minute_in_the_api_and_the_chart(stack, api, api_as, new_key):
    api.post("/v1/jobs", email_job())
    failed_job(api)
    stack.drain()
    admin = Browser(stack)
    admin.sign_in(new_key("tenant-a", "jobs:read,reminders:read,admin"))

    queues = {q["name"]: q for q in api_as("tenant-a", "admin").get("/v1/queues").json()["queues"]}
    assert sum(queues["email"]["jobs"]["completed_per_minute"]) == 1
    assert sum(queues["notifications"]["jobs"]["failed_per_minute"]) == 1
    assert queues["email"]["jobs"]["completed_per_minute"][-1] == 1  # this minute is the last one

    page = admin.get("/dashboard").body.decode()
    assert "1 completed and 1 failed in the last 60 minutes" in page
    assert page.count("data-queue=") == 6


def test_static_files_are_served_with_long_caching_and_pages_with_a_strict_csp(browser, new_key):
    from conveyor.dashboard import web

    htmx = browser.get(f"/dashboard/static/{web.HTMX}")
    assert htmx.status == 200 and "immutable" in htmx.headers["cache-control"]
    assert browser.get("/dashboard/static/..%2Ftemplates%2Fbase.html").status == 404
    browser.sign_in(new_key("tenant-a", "jobs:read,reminders:read"))
    page = browser.get("/dashboard")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store" and page.headers["x-frame-options"] == "DENY"


def test_the_api_function_does_not_load_the_dashboard_until_a_dashboard_request(stack):
    """Cold start: importing the API handler loads neither Jinja2 nor the dashboard package."""
    code = (
        "import sys, api_handler; "
        "assert 'jinja2' not in sys.modules, 'jinja2'; "
        "assert not [m for m in sys.modules if m.startswith('conveyor.dashboard')], 'dashboard'"
    )
    env = {  # the API function's environment as the template gives it
        **stack.functions["ApiFunction"].environment,
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONPATH": "layers/conveyor:functions/api",
    }
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=Path(__file__).resolve().parents[2])


def test_the_reminders_page_shows_a_day(browser, new_key):
    # Given a signed-in reader of reminders
    browser.sign_in(new_key("tenant-a", "jobs:read,reminders:read"))
    # When they open a day's reminders
    page = browser.get("/dashboard/reminders?day=2026-03-01")
    # Then the page lists that day (it once failed reading the use case's (items, cursor) as an object)
    assert page.status == 200, page.body[:500]
    assert "Reminders on Sunday 01 March 2026" in page.body.decode()
