"""The dashboard's processes pages through the emulated HTTP API (moto, in process): the list, a process's
counters, progress, rate and ETA (the API's own figures), error samples, children, and pause / resume / cancel
with scopes and CSRF. The browser tests (tests/e2e/test_e2e_dashboard.py) drive the same pages in Chromium."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from factories import DashboardBrowser


@pytest.fixture
def browser(stack: Any) -> DashboardBrowser:
    return DashboardBrowser(stack)


def _start(api: Any, tolerated: int | None = None, **params: Any) -> dict[str, Any]:
    body = {"type": "test.fanout", "name": "nightly", "params": params, "tolerated_failure_count": tolerated}
    response = api.post("/v1/processes", body)
    assert response.status == 202, response.body
    return response.json()


def _text(response: Any) -> str:
    return html.unescape(response.body.decode())


def test_the_list_and_a_process_show_its_counters_errors_and_children(processes_api, browser, new_key, stack):
    # Given a finished process with failures and a failed child (policy ignore), and a running one
    done = _start(
        processes_api,
        tolerated=5,
        batches=3,
        outcomes={"1": {"succeeded": 7, "failed": 3}},
        children=[{"params": {"batches": 1, "broken": [0]}, "policy": "ignore"}],
    )
    stack.drain()
    running = _start(processes_api, batches=2, fetch_done=False)
    browser.sign_in(new_key("tenant-a", "processes:read,processes:write"))

    # When the user opens the list
    listing = browser.get("/dashboard/processes")

    # Then both are there, newest first, with state and progress
    body = _text(listing)
    assert listing.status == 200
    rows = re.findall(r'data-process="(prc_\w+)"', body)
    assert rows.index(running["id"]) < rows.index(done["id"])  # (its child is a process of the tenant too)
    assert "completed_with_errors" in body and "pending" in body
    # and the finished one's page shows its exact counters, its error samples and its child
    detail = _text(browser.get(f"/dashboard/processes/{done['id']}"))
    api_view = processes_api.get(f"/v1/processes/{done['id']}").json()
    assert api_view["state"] == "completed_with_errors"
    for name in ("processed", "succeeded", "failed", "skipped"):
        value = re.search(rf'data-counter="{name}">(\d+)<', detail).group(1)
        assert int(value) == api_view["counts"][name], name
    assert "r1-0" in detail and "bad record" in detail  # an error sample: record id and message
    [child] = processes_api.get(f"/v1/processes/{done['id']}/children").json()["items"]
    assert child["process"]["id"] in detail and "policy ignore" in detail
    assert 'id="process-progress" max="100" value="100.0"' in detail
    assert "hx-get" not in detail.split('id="process-live"')[1].split(">")[0]  # finished: no more polling


def test_pause_resume_and_cancel_go_through_the_processes_service(processes_api, browser, new_key, stack):
    # Given a running process (its driver ran; the total is not declared yet)
    process = _start(processes_api, batches=2, fetch_done=False)
    stack.drain()
    assert processes_api.get(f"/v1/processes/{process['id']}").json()["state"] == "running"
    browser.sign_in(new_key("tenant-a", "processes:read,processes:write"))
    page = _text(browser.get(f"/dashboard/processes/{process['id']}"))
    assert "Pause" in page and "Resume" not in page
    csrf = browser.csrf()

    # When the user pauses, then resumes, then cancels it
    paused = browser.post(f"/dashboard/processes/{process['id']}/pause", {"csrf": csrf})
    state_after_pause = processes_api.get(f"/v1/processes/{process['id']}").json()["state"]
    resumed = browser.post(f"/dashboard/processes/{process['id']}/resume", {"csrf": csrf})
    state_after_resume = processes_api.get(f"/v1/processes/{process['id']}").json()["state"]
    cancelled = browser.post(f"/dashboard/processes/{process['id']}/cancel", {"csrf": csrf})

    # Then each is the API's own transition, answered post/redirect/get
    assert paused.status == resumed.status == cancelled.status == 303
    assert (state_after_pause, state_after_resume) == ("paused", "running")
    assert processes_api.get(f"/v1/processes/{process['id']}").json()["state"] == "cancelled"
    shown = _text(browser.get(cancelled.headers["location"]))
    assert "Cancelled" in shown and 'id="process-state">cancelled<' in shown
    # and an illegal one is the API's 409, shown as a page
    again = browser.post(f"/dashboard/processes/{process['id']}/cancel", {"csrf": csrf})
    assert again.status == 409 and "cancelled" in _text(again)


def test_a_read_only_key_sees_no_process_buttons_and_cannot_act_and_a_post_needs_csrf(
    processes_api, browser, new_key, stack
):
    process = _start(processes_api, batches=2, fetch_done=False)
    stack.drain()

    browser.sign_in(new_key("tenant-a", "processes:read"))
    page = _text(browser.get(f"/dashboard/processes/{process['id']}"))
    forged = browser.post(f"/dashboard/processes/{process['id']}/cancel", {"csrf": browser.csrf()})

    assert "<button" not in page.split('id="process-live"')[1].split("</section>")[0]
    assert forged.status == 403 and "processes:write" in _text(forged)
    writer = DashboardBrowser(stack)
    writer.sign_in(new_key("tenant-a", "processes:read,processes:write"))
    assert writer.post(f"/dashboard/processes/{process['id']}/cancel", {}).status == 403  # no CSRF token
    assert processes_api.get(f"/v1/processes/{process['id']}").json()["state"] == "running"


def test_processes_stay_within_the_tenant_and_need_their_scope(processes_api, browser, new_key, stack):
    process = _start(processes_api, batches=1)
    stack.drain()

    browser.sign_in(new_key("tenant-b", "processes:read,processes:write"))
    other = browser.get(f"/dashboard/processes/{process['id']}")
    listing = _text(browser.get("/dashboard/processes"))
    jobs_only = DashboardBrowser(stack)
    jobs_only.sign_in(new_key("tenant-a", "jobs:read"))

    assert other.status == 404
    assert process["id"] not in listing
    assert jobs_only.get("/dashboard/processes").status == 403
    assert "Processes" not in _text(jobs_only.get("/dashboard")).split("</nav>")[0]
