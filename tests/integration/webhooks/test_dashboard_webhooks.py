"""The dashboard's webhooks pages: subscriptions with their health, a subscription's delivery log, and resend
through the same use case as POST /v1/webhooks/{id}/deliveries/{delivery_id}/resend (scopes, tenant, CSRF)."""

from __future__ import annotations

import re

from factories import DashboardBrowser
from support import deliveries, delivery, received, subscribe, touch_contact


def _signed_in(stack, new_key, scopes: str, tenant: str = "tenant-a") -> DashboardBrowser:
    browser = DashboardBrowser(stack)
    assert browser.sign_in(new_key(tenant, scopes)).status == 303
    return browser


def test_the_delivery_log_shows_what_was_sent_and_resend_sends_it_again(api, stack, httpserver, new_key):
    # Given a subscription whose receiver got one contact.created delivery
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    sub = subscribe(api, httpserver.url_for("/hook"), description="CRM mirror")
    touch_contact(api, "c-1", "Ann")
    stack.drain()
    [logged] = deliveries(api, sub["id"])
    browser = _signed_in(stack, new_key, "webhooks:read,webhooks:write")

    # When the user opens the webhooks page and the subscription
    listing = browser.get("/dashboard/webhooks").body.decode()
    detail = browser.get(f"/dashboard/webhooks/{sub['id']}").body.decode()

    # Then the list names it with its health, and its log shows the delivery, its answer and a resend button
    assert f'data-subscription="{sub["id"]}"' in listing and "CRM mirror" in listing and "last delivered" in listing
    row = re.search(rf'<tr data-delivery="{logged["id"]}">.*?</tr>', detail, re.S).group(0)
    assert "contact.created" in row and "delivered" in row and "HTTP 200" in row and ">Resend<" in row
    assert sub["secret"] not in listing + detail

    # When they resend it (the form's CSRF token), the receiver gets it again, as a manual attempt
    resent = browser.post(f"/dashboard/webhooks/{sub['id']}/deliveries/{logged['id']}/resend", {"csrf": browser.csrf()})
    assert resent.status == 303 and "notice=delivery-resent" in resent.headers["location"]
    stack.drain()
    assert len(received(httpserver)) == 2
    attempts = delivery(api, sub["id"], logged["id"])["attempts"]
    assert [a["trigger"] for a in attempts] == ["scheduled", "manual"]
    assert "Sent again" in browser.get(resent.headers["location"]).body.decode()


def test_the_log_filters_by_status(api, stack, httpserver, new_key):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    sub = subscribe(api, httpserver.url_for("/hook"))
    touch_contact(api, "c-1", "Ann")
    stack.drain()
    browser = _signed_in(stack, new_key, "webhooks:read")

    delivered = browser.get(f"/dashboard/webhooks/{sub['id']}?status=delivered").body.decode()
    failed = browser.get(f"/dashboard/webhooks/{sub['id']}?status=failed").body.decode()

    assert delivered.count("<tr data-delivery=") == 1 and failed.count("<tr data-delivery=") == 0
    assert browser.get(f"/dashboard/webhooks/{sub['id']}?status=exploded").status == 400


def test_a_read_only_key_sees_no_resend_and_a_forged_one_is_refused(api, stack, httpserver, new_key):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    sub = subscribe(api, httpserver.url_for("/hook"))
    touch_contact(api, "c-1", "Ann")
    stack.drain()
    [logged] = deliveries(api, sub["id"])
    reader = _signed_in(stack, new_key, "webhooks:read")

    detail = reader.get(f"/dashboard/webhooks/{sub['id']}").body.decode()
    forged = reader.post(f"/dashboard/webhooks/{sub['id']}/deliveries/{logged['id']}/resend", {"csrf": reader.csrf()})

    assert 'data-delivery="' in detail and "Resend" not in detail
    assert forged.status == 403
    stack.drain()
    assert len(received(httpserver)) == 1  # nothing was sent again


def test_another_tenants_subscription_is_not_found_and_a_jobs_key_sees_no_webhooks(api, stack, new_key):
    sub = subscribe(api, "http://127.0.0.1:9/hook")
    other = _signed_in(stack, new_key, "webhooks:read,webhooks:write", tenant="tenant-b")
    jobs_only = _signed_in(stack, new_key, "jobs:read")

    assert other.get(f"/dashboard/webhooks/{sub['id']}").status == 404
    assert sub["id"] not in other.get("/dashboard/webhooks").body.decode()
    assert "/dashboard/webhooks" not in jobs_only.get("/dashboard").body.decode()  # no menu entry
    assert jobs_only.get("/dashboard/webhooks").status == 403
