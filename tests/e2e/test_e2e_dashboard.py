"""The dashboard in a real browser (Chromium via Playwright) against the local stack: sign-in, the overview, queues,
jobs and their actions, bulk actions, scopes, CSRF, the phone layout, sign-out and revocation, and a process
advancing with its rate and ETA (the API's own figures), paused and resumed.

Each test saves a screenshot under .local/screenshots/ (not committed).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from dashboard_browser import (
    PHONE,
    WIDE,
    banner_signin_link,
    create_key,
    csrf_of,
    enqueue,
    launch,
    no_horizontal_scroll,
    page_wait_until,
    revoke_key,
    screenshot,
    sign_in,
)
from local_stack_process import ROOT, RunningStack, start_stack, wait_until
from playwright.sync_api import expect, sync_playwright

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("dashboard")]  # one stack and one browser for the file
expect.set_options(timeout=15_000)  # an assertion's wait (5 s by default), for the same reason as the page's
QUEUES = ("email", "notifications", "reminders", "reports", "sync", "webhooks")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(ROOT / "template.yaml", tmp_path_factory.mktemp("dashboard"))
    # The API function imports the dashboard on its first page (Jinja2, templates): warm, as a sandbox that has
    # served a page is. On a loaded 2-core machine that first import can pass the function's 10 s Timeout, which
    # the local stack enforces, and the first test's page would be a timeout instead of what it checks.
    wait_until(lambda: running.request("GET", "/dashboard/signin", key=None).status == 200, 120, "a dashboard page")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=WIDE)
    # Playwright's own default: the suite's stacks and browsers share two cores, and a page the local stack
    # serves within its Timeout x 3 (see start_stack) must not fail the test
    context.set_default_timeout(30_000)
    tab = context.new_page()
    tab.on("dialog", lambda dialog: dialog.accept())
    yield tab
    context.close()


def failing_notification(stack: RunningStack, contact_id: str, **headers: str) -> dict[str, Any]:
    """A job that fails (its contact does not exist yet) and succeeds when retried after the contact is created."""
    job = enqueue(
        stack,
        {"type": "notification.send", "payload": {"contact_id": contact_id, "subject": "Hi", "text": "Your results"}},
        **headers,
    )
    return stack.wait_for_job(job["id"], ("failed",), timeout=20)


def create_contact(stack: RunningStack, contact_id: str) -> None:
    body = {"name": "Ann", "email": f"{contact_id}@example.com", "timezone": "Europe/London", "channels": ["email"]}
    assert stack.request("PUT", f"/v1/contacts/{contact_id}", body).status in (200, 201)


# --- sign-in -----------------------------------------------------------------------------------------------
def test_the_banner_link_signs_the_demo_key_in_once(stack: RunningStack, page: Any) -> None:
    # Given the one-time link `make run` printed (this module's stack started seconds ago)
    link = banner_signin_link(stack)
    assert stack.key not in link

    # When a newcomer opens it
    page.goto(link)

    # Then they are on the overview, signed in as the demo tenant
    page.wait_for_url(stack.url + "/dashboard")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator("header.top")).to_contain_text("demo")
    # and the link does not work a second time, in another browser
    other = page.context.browser.new_context()
    again = other.new_page()
    again.goto(link)
    expect(again.get_by_role("alert")).to_contain_text("already used or has expired")
    other.close()


def test_signing_in_with_a_key_shows_the_six_queues_and_keeps_only_a_strict_session_cookie(
    stack: RunningStack, page: Any
) -> None:
    # Given some finished work
    job = enqueue(
        stack,
        {
            "type": "email.send",
            "payload": {"to": ["ada@example.com"], "template": "welcome", "context": {"name": "Ada"}},
        },
    )
    stack.wait_for_job(job["id"], ("completed",), timeout=20)

    # When the user pastes their API key
    sign_in(page, stack, stack.key)

    # Then the overview lists every queue with its counts, and the chart counts the completed job
    rows = page.locator("#queues tbody tr")
    expect(rows).to_have_count(6)
    assert tuple(rows.nth(i).get_attribute("data-queue") for i in range(6)) == QUEUES
    expect(page.locator('#queues tr[data-queue="email"] td[data-label="Completed"]')).not_to_have_text("0")
    expect(
        page.get_by_role("img", name=re.compile("Jobs per minute, all queues: [1-9][0-9]* completed"))
    ).to_be_visible()
    # and the browser holds a session cookie only: HttpOnly, Secure, SameSite=Strict, expiring; never the key
    (session,) = [c for c in page.context.cookies() if c["name"] == "conveyor_session"]
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Strict"
    assert 0 < session["expires"] - time.time() <= 8 * 3600 + 60
    assert stack.key not in session["value"] and stack.key not in page.content() and stack.key not in page.url
    stored = page.evaluate("JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie")
    assert stack.key not in stored and "cvk_" not in stored and "conveyor_session" not in stored
    screenshot(page, "overview")


def test_a_wrong_key_is_refused_and_pages_need_a_session(stack: RunningStack, page: Any) -> None:
    page.goto(stack.url + "/dashboard/queues/email")
    page.wait_for_url(stack.url + "/dashboard/signin?next=%2Fdashboard%2Fqueues%2Femail")  # back there after it
    page.get_by_label("API key").fill("cvk_" + "x" * 52)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown, revoked or expired")
    screenshot(page, "signin-refused")


# --- a queue, a job, its actions --------------------------------------------------------------------------
def test_a_failed_job_found_by_its_id_is_retried_with_its_button_and_moves_to_completed(
    stack: RunningStack, page: Any
) -> None:
    # Given a failed notification job (its contact did not exist), whose cause is then fixed
    job = failing_notification(stack, "ann-retry")
    create_contact(stack, "ann-retry")
    sign_in(page, stack, stack.key)

    # When the user searches the failed tab of its queue for its id
    page.goto(stack.url + "/dashboard/queues/notifications?state=failed")
    page.get_by_label("Search by job id or Idempotency-Key").fill(job["id"])
    page.get_by_role("button", name="Apply").click()
    row = page.locator(f'#jobs tr[data-job="{job["id"]}"]')
    expect(row).to_contain_text("failed")
    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    screenshot(page, "queue-search")
    # and opens it and presses Retry
    row.get_by_role("link").click()
    expect(page.locator(".error")).to_contain_text("not found")
    page.get_by_role("button", name="Retry").click()

    # Then the job page shows it queued again, and (polling) completed within seconds
    expect(page.get_by_role("status")).to_contain_text("Retried")
    expect(page.locator("#job-state")).to_have_text("completed", timeout=15_000)
    expect(page.get_by_role("button", name="Retry")).to_have_count(0)
    screenshot(page, "job")
    # and its row is in the queue's completed tab
    page.goto(stack.url + "/dashboard/queues/notifications?state=completed")
    expect(page.locator(f'#jobs tr[data-job="{job["id"]}"]')).to_contain_text("completed")
    screenshot(page, "queue")


def test_a_job_is_found_by_its_idempotency_key(stack: RunningStack, page: Any) -> None:
    job = enqueue(
        stack,
        {
            "type": "email.send",
            "payload": {"to": ["bo@example.com"], "template": "welcome", "context": {"name": "Ada"}},
        },
        **{"Idempotency-Key": "signup-bo-42"},
    )
    sign_in(page, stack, stack.key)
    page.goto(stack.url + "/dashboard/queues/email?state=completed&q=signup-bo-42")
    expect(page.locator(f'#jobs tr[data-job="{job["id"]}"]')).to_be_visible()
    page.goto(stack.url + f"/dashboard/jobs/{job['id']}")
    expect(page.locator("dl.facts")).to_contain_text("signup-bo-42")


def test_bulk_retry_of_three_selected_failed_jobs(stack: RunningStack, page: Any) -> None:
    # Given three failed jobs whose contacts now exist
    jobs = [failing_notification(stack, f"bulk-{i}") for i in range(3)]
    for i in range(3):
        create_contact(stack, f"bulk-{i}")
    sign_in(page, stack, stack.key)

    # When the user selects the three rows in the failed tab and retries them
    page.goto(stack.url + "/dashboard/queues/notifications?state=failed")
    for job in jobs:
        page.get_by_label(f"Select {job['id']}").check()
    screenshot(page, "bulk-selected")
    page.get_by_role("button", name="Retry selected").click()

    # Then all three were retried, and each completes
    expect(page.get_by_role("status")).to_contain_text("3 changed, 0 skipped")
    for job in jobs:
        expect(page.locator(f'#jobs tr[data-job="{job["id"]}"]')).to_have_count(0)
        assert stack.wait_for_job(job["id"], ("completed",), timeout=15)["state"] == "completed"


def test_a_scheduled_job_runs_now_and_a_finished_one_is_deleted(stack: RunningStack, page: Any) -> None:
    job = enqueue(
        stack,
        {
            "type": "email.send",
            "delay_seconds": 3600,
            "payload": {"to": ["cy@example.com"], "template": "welcome", "context": {"name": "Ada"}},
        },
    )
    assert job["state"] == "scheduled"
    sign_in(page, stack, stack.key)
    page.goto(stack.url + f"/dashboard/jobs/{job['id']}")
    page.get_by_role("button", name="Run now").click()
    expect(page.locator("#job-state")).to_have_text("completed", timeout=15_000)
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("status")).to_contain_text("Deleted")
    assert stack.request("GET", f"/v1/jobs/{job['id']}").status == 404


# --- scopes and CSRF -------------------------------------------------------------------------------------------
def test_a_read_only_key_sees_no_action_buttons_and_its_forged_post_is_refused(stack: RunningStack, page: Any) -> None:
    # Given a failed job of the demo tenant, and a read-only key of the same tenant
    job = failing_notification(stack, "nobody-ro")
    reader = create_key(stack, "demo", "jobs:read,reminders:read")  # notification jobs need both to be read

    # When that key signs in
    sign_in(page, stack, reader)

    # Then neither the queue nor the job page offers an action
    page.goto(stack.url + "/dashboard/queues/notifications?state=failed")
    expect(page.locator(f'#jobs tr[data-job="{job["id"]}"]')).to_be_visible()
    expect(page.locator("main button")).to_have_count(1)  # "Apply" (the filter form) only
    page.goto(stack.url + f"/dashboard/jobs/{job['id']}")
    expect(page.get_by_role("button", name="Retry")).to_have_count(0)
    expect(page.locator("main form[method=post]")).to_have_count(0)
    screenshot(page, "read-only-job")
    # and a forged retry, with this session's own valid CSRF token, is refused by the server
    forged = page.request.post(
        stack.url + f"/dashboard/jobs/{job['id']}/retry", form={"csrf": csrf_of(page)}, max_redirects=0
    )
    assert forged.status == 403, forged.text()
    assert "jobs:write" in forged.text()
    assert stack.job(job["id"])["state"] == "failed"


def test_a_post_without_the_csrf_token_is_refused(stack: RunningStack, page: Any) -> None:
    job = failing_notification(stack, "nobody-csrf")
    sign_in(page, stack, stack.key)
    page.goto(stack.url + f"/dashboard/jobs/{job['id']}")

    missing = page.request.post(stack.url + f"/dashboard/jobs/{job['id']}/retry", form={}, max_redirects=0)
    wrong = page.request.post(
        stack.url + f"/dashboard/jobs/{job['id']}/retry", form={"csrf": "x" * 43}, max_redirects=0
    )

    assert missing.status == 403 and wrong.status == 403
    assert "CSRF" in missing.text()
    assert stack.job(job["id"])["state"] == "failed"


# --- layout ------------------------------------------------------------------------------------------------------
def test_the_phone_layout_has_no_horizontal_scroll(stack: RunningStack, browser: Any) -> None:
    job = failing_notification(stack, "nobody-phone")
    context = browser.new_context(viewport=PHONE, color_scheme="dark", is_mobile=True, has_touch=True)
    phone = context.new_page()
    sign_in(phone, stack, stack.key)
    for name, path in (
        ("phone-overview", "/dashboard"),
        ("phone-queue", "/dashboard/queues/notifications?state=failed"),
        ("phone-job", f"/dashboard/jobs/{job['id']}"),
        ("phone-reminders", "/dashboard/reminders"),
        ("phone-processes", "/dashboard/processes"),
    ):
        phone.goto(stack.url + path)
        assert no_horizontal_scroll(phone), name
        screenshot(phone, name)
    context.close()


def test_live_parts_stop_polling_while_the_tab_is_hidden(stack: RunningStack, page: Any) -> None:
    sign_in(page, stack, stack.key)
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.url) if "/live/overview" in request.url else None)
    page_wait_until(page, lambda: len(polls) >= 1, 10, "the overview to poll")

    # When the tab is hidden, no poll goes out
    page.evaluate(
        "Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    page.wait_for_timeout(500)  # a poll in flight when the tab was hidden may still land
    hidden_from = len(polls)
    page.wait_for_timeout(7_000)  # two poll intervals
    assert len(polls) == hidden_from

    # and when it is shown again, it refreshes at once
    page.evaluate(
        "Object.defineProperty(document, 'hidden', {configurable: true, get: () => false});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    page_wait_until(page, lambda: len(polls) > hidden_from, 2, "a refresh when the tab is shown")


def test_keyboard_users_can_reach_and_use_the_search(stack: RunningStack, page: Any) -> None:
    sign_in(page, stack, stack.key)
    page.goto(stack.url + "/dashboard/queues/email")
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Skip to content")
    page.get_by_label("Search by job id or Idempotency-Key").focus()
    page.keyboard.type("job_00000000000000000000000000")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("No job of yours")


# --- ending a session ---------------------------------------------------------------------------------------
def test_signing_out_ends_the_session_even_for_a_copied_cookie(stack: RunningStack, page: Any, browser: Any) -> None:
    sign_in(page, stack, stack.key)
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "conveyor_session"]

    page.get_by_role("button", name="Sign out").click()

    page.wait_for_url(stack.url + "/dashboard/signin")
    copy = browser.new_context()
    copy.add_cookies([cookie])
    stolen = copy.new_page()
    stolen.goto(stack.url + "/dashboard")
    assert stolen.url == stack.url + "/dashboard/signin"
    copy.close()
    screenshot(page, "signed-out")


def test_revoking_the_key_ends_its_session(stack: RunningStack, page: Any) -> None:
    key = create_key(stack, "demo", "jobs:read,jobs:write")
    sign_in(page, stack, key)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()

    revoke_key(stack, key)

    page.goto(stack.url + "/dashboard/queues/email")
    assert page.url == stack.url + "/dashboard/signin?next=%2Fdashboard%2Fqueues%2Femail"


# --- processes ---------------------------------------------------------------------------------------------
CAMPAIGN_CONTACTS = 500


def seed_contacts(stack: RunningStack, count: int) -> None:
    """`count` in-app contacts named "Client <n>" for the demo tenant, written straight into the stack's emulator
    by the same helper `conveyor processes campaign-demo` uses (in a child process: it points boto3 at the
    emulator through the environment, which this test process must not change)."""
    code = "import sys; from pathlib import Path; from conveyor_local.processes_cli import seed_contacts; "
    code += "seed_contacts(int(sys.argv[1]), Path(sys.argv[2]))"
    subprocess.run(  # noqa: S603 - our own interpreter and helper
        [sys.executable, "-c", code, str(count), str(stack.state_dir / "stack.json")],
        check=True,
        capture_output=True,
        timeout=120,
    )


def start_campaign(stack: RunningStack, name: str) -> dict[str, Any]:
    body = {
        "type": "reminders.campaign",
        "name": name,
        "params": {"filter": {"name_prefix": "Client "}, "subject": "Closed Friday", "text": "See you Monday"},
    }
    response = stack.request("POST", "/v1/processes", body)
    assert response.status == 202, response.body
    return response.json()


def process_view(stack: RunningStack, process_id: str) -> dict[str, Any]:
    response = stack.request("GET", f"/v1/processes/{process_id}")
    assert response.status == 200, response.body
    return response.json()


def settled_view(stack: RunningStack, process_id: str, timeout: float = 30) -> dict[str, Any]:
    """The process as the API shows it once two reads a second apart agree (in-flight batches have landed)."""
    previous: list[dict[str, Any]] = []

    def stable() -> dict[str, Any] | None:
        view = process_view(stack, process_id)
        same = previous and previous[-1] == view
        previous.append(view)
        return view if same else None

    return wait_until(stable, timeout, "the paused process to stop changing", interval=1.0)


def test_a_process_advances_with_an_eta_pauses_and_resumes_and_shows_the_apis_rate_and_eta(
    stack: RunningStack, page: Any
) -> None:
    # Given a signed-in user, 500 contacts and a campaign to all of them (5 batches of 100, run one after another)
    sign_in(page, stack, stack.key)
    seed_contacts(stack, CAMPAIGN_CONTACTS)
    process = start_campaign(stack, "Closed Friday")

    # When the user finds it in the processes list and opens it
    page.goto(stack.url + "/dashboard/processes")
    expect(page.get_by_role("link", name="Processes", exact=True)).to_have_attribute("aria-current", "page")
    row = page.locator(f'#processes tr[data-process="{process["id"]}"]')
    expect(row).to_be_visible()
    screenshot(page, "processes")
    row.get_by_role("link", name="Closed Friday").click()

    # Then its progress bar advances (live, without a reload) and an ETA appears once the total is known
    bar = page.locator("#process-progress")

    def percent() -> float:
        value = bar.get_attribute("value")
        return float(value) if value else 0.0

    page_wait_until(page, lambda: percent() > 0, 240, "the progress bar to move")
    first = percent()
    page_wait_until(page, lambda: percent() > first, 180, "the progress bar to advance")
    expect(page.locator("#process-eta")).to_have_attribute("data-indeterminate", "false")
    expect(page.locator("#process-eta")).to_contain_text(re.compile(r"\d+ s|\d+ min"))
    assert page.locator("#process-eta").get_attribute("data-eta-seconds")
    screenshot(page, "process")

    # When the user pauses it
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("status")).to_contain_text("Paused")
    expect(page.locator("#process-state")).to_have_text("paused")

    # Then, once in-flight batches have landed, the page shows exactly the API's counts, percent, rate and ETA
    view = settled_view(stack, process["id"])
    page.reload()
    eta, rate = page.locator("#process-eta"), page.locator("#process-rate")
    progress = view["progress"]
    assert view["state"] == "paused" and progress["eta_seconds"] is not None
    assert float(eta.get_attribute("data-eta-seconds")) == progress["eta_seconds"]
    shown_at = datetime.fromisoformat(eta.get_attribute("data-eta-at"))
    assert shown_at == datetime.fromisoformat(progress["eta_at"].replace("Z", "+00:00"))
    assert float(rate.get_attribute("data-rate")) == progress["rate_per_second"]
    if progress["smoothed_rate_per_second"] is not None:
        assert float(rate.get_attribute("data-smoothed-rate")) == progress["smoothed_rate_per_second"]
    assert percent() == progress["percent"]
    assert page.locator('[data-counter="processed"]').inner_text() == str(view["counts"]["processed"])
    shown_rate = progress["smoothed_rate_per_second"]
    if shown_rate is None:
        shown_rate = progress["rate_per_second"]
    expect(rate).to_contain_text(f"{shown_rate:.1f}/s")
    expect(eta).to_contain_text(_duration(progress["eta_seconds"]))
    assert process_view(stack, process["id"]) == view  # nothing moved while the page was read
    screenshot(page, "process-paused")

    # When it is resumed, it runs to the end: every contact counted once, the bar full, no ETA left
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#process-state")).to_have_text("completed", timeout=300_000)
    expect(page.locator('[data-counter="succeeded"]')).to_have_text(str(CAMPAIGN_CONTACTS))
    assert percent() == 100.0
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    screenshot(page, "process-completed")


def _duration(seconds: float) -> str:
    """How the dashboard writes an ETA (conveyor.dashboard.web.duration)."""
    from conveyor.dashboard.web import duration

    return duration(seconds)


def _api(stack: RunningStack, method: str, path: str, body: Any = None) -> dict[str, Any]:
    response = stack.request(method, path, body)
    assert response.status < 300, response.body
    return response.json()


def test_an_emailed_report_link_signs_in_then_downloads_a_fresh_file_and_the_report_is_listed(
    stack: RunningStack, page: Any
) -> None:
    # Given a finished jobs report
    enqueue(stack, {"type": "email.send", "payload": {"to": ["r@example.com"], "subject": "s", "text": "t"}})
    report = _api(stack, "POST", "/v1/reports", {"type": "jobs", "name": "Every job", "timezone": "Europe/Paris"})
    deadline = time.monotonic() + 30
    while _api(stack, "GET", f"/v1/reports/{report['id']}")["state"] != "ready":
        assert time.monotonic() < deadline, "the report did not become ready in 30 s"
        time.sleep(0.3)

    # When the user follows the email's link without a session, and signs in
    page.goto(stack.url + f"/dashboard/reports/{report['id']}/download")
    expect(page.get_by_label("API key")).to_be_visible()
    page.get_by_label("API key").fill(stack.key)
    with page.expect_download() as started:
        page.get_by_role("button", name="Sign in").click()

    # Then the browser downloads the report as an attachment named after it, straight from S3
    download = started.value
    assert download.suggested_filename.startswith("jobs-") and download.suggested_filename.endswith(".csv")
    assert "X-Amz-Expires=600" in download.url and "X-Amz-Signature" in download.url
    with open(download.path(), encoding="utf-8") as fh:
        assert fh.readline().startswith("job_id,type,queue,state")
    # and the local stack keeps a copy under .local/reports/ for a quick look
    (copy,) = (stack.state_dir / "reports").glob(f"{report['id']}-*.csv")
    assert copy.read_bytes() == open(download.path(), "rb").read()  # noqa: SIM115, PTH123

    # and the reports page lists it with a download link of the dashboard's own (minting a URL per click)
    page.goto(stack.url + "/dashboard/reports")
    row = page.locator("#reports tbody tr", has_text="Every job")
    expect(row.locator('td[data-label="State"]')).to_have_text(re.compile("ready"))
    link = row.get_by_role("link", name=re.compile("Download"))
    assert link.get_attribute("href") == f"/dashboard/reports/{report['id']}/download"
    screenshot(page, "reports")
