"""The reminders API: validation, tenancy, scopes, the policy, listing, and ad-hoc notifications."""

from __future__ import annotations

from typing import Any

from conveyor.platform import dynamo

APPOINTMENT = "2099-06-10T10:00:00+01:00"


def fields(response: Any) -> dict[str, str]:
    """{'body.phone': message} from a 422 answer."""
    return {".".join(map(str, d["loc"])): d["msg"] for d in response.json()["error"]["details"]}


# --- validation -------------------------------------------------------------------------------------------
INVALID_CONTACTS = [  # (change to a valid contact, the field named in the answer, words the message uses)
    ({"phone": "07700 900123"}, "body.phone", "E.164"),
    ({"phone": "+44"}, "body.phone", "E.164"),
    ({"email": "ada-at-example.com"}, "body.email", "email"),
    ({"timezone": "CEST"}, "body.timezone", "IANA"),
    ({"timezone": "Mars/Olympus_Mons"}, "body.timezone", "IANA"),
    ({"channels": ["email", "email"]}, "body.channels", "repeat"),
    ({"channels": ["fax"]}, "body.channels.0", "email"),
    ({"quiet_hours": {"start": "25:00", "end": "08:00"}}, "body.quiet_hours.start", "pattern"),
]


def test_invalid_contact_fields_are_422_with_the_field_named(rapi: Any, subtests: Any) -> None:
    valid = {"name": "Ada", "email": "ada@example.com", "phone": "+447700900123", "timezone": "Europe/London"}
    for change, field, says in INVALID_CONTACTS:
        with subtests.test(msg=str(change)):
            response = rapi.request("PUT", "/v1/contacts/c1", {**valid, **change})

            assert response.status == 422
            assert response.json()["error"]["code"] == "validation_error"
            assert says in fields(response)[field]
            assert rapi.get("/v1/contacts/c1").status == 404  # nothing was stored


def test_a_contact_is_created_then_replaced(rapi: Any) -> None:
    body = {"name": "Ada", "email": "ada@example.com", "timezone": "Europe/London"}
    created = rapi.request("PUT", "/v1/contacts/c1", body)
    replaced = rapi.request("PUT", "/v1/contacts/c1", {**body, "name": "Ada L.", "channels": ["sms", "email"]})

    assert (created.status, replaced.status) == (201, 200)
    got = rapi.get("/v1/contacts/c1").json()
    assert got["name"] == "Ada L." and got["channels"] == ["sms", "email"] and got["phone"] is None
    assert got["created_at"] == created.json()["created_at"]


def test_invalid_appointments_are_422(rapi: Any, contact: Any, subtests: Any) -> None:
    contact("c1")
    for change, field in [
        ({"starts_at": "2099-06-10T10:00:00"}, "body.starts_at"),  # no offset: ambiguous
        ({"status": "maybe"}, "body.status"),
        ({"contact_id": "has#hash"}, "body.contact_id"),
    ]:
        with subtests.test(msg=str(change)):
            response = rapi.request(
                "PUT",
                "/v1/appointments/a1",
                {"contact_id": "c1", "subject_name": "Rex", "starts_at": APPOINTMENT, **change},
            )
            assert response.status == 422 and field in fields(response)


def test_invalid_medication_schedules_are_422(rapi: Any, contact: Any, subtests: Any) -> None:
    contact("c1")
    for change in [
        {"times_of_day": ["08:00"], "every_hours": 8},
        {},
        {"times_of_day": ["8am"]},
        {"times_of_day": ["08:00"], "end_date": "2099-01-01"},
    ]:
        with subtests.test(msg=str(change)):
            response = rapi.request(
                "PUT",
                "/v1/medication-schedules/m1",
                {"contact_id": "c1", "medication": "A", "dose": "1", "start_date": "2099-02-01", **change},
            )
            assert response.status == 422


def test_invalid_policies_are_422(rapi: Any, subtests: Any) -> None:
    for policy, field in [
        ({"appointment_lead_times": ["24h"]}, "body.appointment_lead_times"),
        ({"appointment_lead_times": ["P90D"]}, "body.appointment_lead_times"),
        ({"appointment_lead_times": []}, "body.appointment_lead_times"),
        ({"templates": {"appointment": "nope"}}, "body.templates.appointment"),
        # renders only with a report_name, which an appointment reminder does not have
        ({"templates": {"appointment": "report-ready"}}, "body.templates.appointment"),
        ({"templates": {"medication": "appointment-reminder"}}, "body.templates.medication"),
    ]:
        with subtests.test(msg=str(policy)):
            response = rapi.request("PUT", "/v1/reminder-policy", policy)
            assert response.status == 422 and field in fields(response)


def test_the_policy_has_defaults_until_set(rapi: Any) -> None:
    assert rapi.get("/v1/reminder-policy").json() == {
        "appointment_lead_times": ["PT24H", "PT2H"],
        "templates": {"appointment": "appointment-reminder", "medication": "medication-reminder"},
    }
    rapi.request("PUT", "/v1/reminder-policy", {"appointment_lead_times": ["P2D", "PT1H"]})
    assert rapi.get("/v1/reminder-policy").json()["appointment_lead_times"] == ["P2D", "PT1H"]


# --- tenancy and scopes -----------------------------------------------------------------------------------
def test_another_tenants_ids_are_404(rapi: Any, other_tenant: Any, contact: Any, appointment: Any) -> None:
    # Given tenant-a's contact, appointment and schedule
    contact("c1")
    appointment("a1", APPOINTMENT)
    rapi.request(
        "PUT",
        "/v1/medication-schedules/m1",
        {"contact_id": "c1", "medication": "A", "dose": "1", "times_of_day": ["08:00"], "start_date": "2099-01-01"},
    )

    # Then tenant-b cannot see or use any of them
    for path in (
        "/v1/contacts/c1",
        "/v1/appointments/a1",
        "/v1/appointments/a1/reminders",
        "/v1/medication-schedules/m1",
        "/v1/contacts/c1/notifications",
    ):
        response = other_tenant.get(path)
        assert (path, response.status, response.json()["error"]["code"]) == (path, 404, "not_found")
    assert other_tenant.request("DELETE", "/v1/medication-schedules/m1").status == 404
    assert (
        other_tenant.request(
            "PUT", "/v1/appointments/a9", {"contact_id": "c1", "subject_name": "Rex", "starts_at": APPOINTMENT}
        ).status
        == 404
    )
    assert other_tenant.post("/v1/notifications", {"contact_id": "c1", "subject": "Hi", "text": "x"}).status == 404
    assert other_tenant.get("/v1/reminders").json()["items"] == []
    # And tenant-a still has its own
    assert rapi.get("/v1/appointments/a1").status == 200


def test_routes_need_the_reminders_scopes(api_as: Any, contact: Any) -> None:
    contact("c1")
    jobs_only = api_as("tenant-a", "jobs:read,jobs:write")
    read_only = api_as("tenant-a", "reminders:read")

    assert jobs_only.get("/v1/contacts/c1").status == 403
    assert read_only.get("/v1/contacts/c1").status == 200
    denied = read_only.request("PUT", "/v1/contacts/c1", {"name": "X", "timezone": "UTC"})
    assert denied.status == 403 and denied.json()["error"]["details"] == {"required_scope": "reminders:write"}


# --- listing ----------------------------------------------------------------------------------------------
def test_reminders_list_by_time_window_and_state_with_pages(rapi: Any, contact: Any, appointment: Any) -> None:
    contact("c1")
    appointment("a1", "2099-06-10T10:00:00+01:00")  # reminders 06-09 09:00Z, 06-10 07:00Z
    appointment("a2", "2099-06-12T10:00:00+01:00")  # reminders 06-11 09:00Z, 06-12 07:00Z
    appointment("a2", "2099-06-12T10:00:00+01:00", status="cancelled")

    window = rapi.get("/v1/reminders?from=2099-06-09T12:00:00Z&to=2099-06-11T23:00:00Z").json()
    assert [(r["appointment_id"], r["remind_at"]) for r in window["items"]] == [
        ("a1", "2099-06-10T07:00:00Z"),
        ("a2", "2099-06-11T09:00:00Z"),
    ]
    assert [r["appointment_id"] for r in rapi.get("/v1/reminders?state=pending").json()["items"]] == ["a1", "a1"]

    first = rapi.get("/v1/reminders?limit=3").json()
    second = rapi.get(f"/v1/reminders?limit=3&cursor={first['next_cursor']}").json()
    assert len(first["items"]) == 3 and len(second["items"]) == 1 and second["next_cursor"] is None
    assert rapi.get("/v1/reminders?cursor=garbage").status == 400
    assert rapi.get("/v1/reminders?from=yesterday").status == 422
    assert rapi.get("/v1/reminders?state=lost").status == 422


def test_a_state_filter_over_many_reminders_reads_bounded_pages_by_send_time(
    rapi: Any, contact: Any, appointment: Any, monkeypatch: Any
) -> None:
    # Given three appointments (two reminders each), one of them cancelled, and listings that read 3 a request
    contact("c1")
    for name, day in (("a1", "10"), ("a2", "12"), ("a3", "14")):
        appointment(name, f"2099-06-{day}T10:00:00+01:00")
    appointment("a1", "2099-06-10T10:00:00+01:00", status="cancelled")
    monkeypatch.setattr(dynamo, "MAX_EXAMINED", 3)

    # When the pending ones are listed, page after page (the cursor carries the time index's key)
    pages, cursor = [], ""
    while cursor is not None:
        page = rapi.get(f"/v1/reminders?state=pending&limit=10{cursor and f'&cursor={cursor}'}").json()
        pages.append([(r["appointment_id"], r["remind_at"]) for r in page["items"]])
        cursor = page["next_cursor"]

    # Then every pending reminder came once, in send-time order, never more than 3 read per request
    assert [item for page in pages for item in page] == [
        ("a2", "2099-06-11T09:00:00Z"),
        ("a2", "2099-06-12T07:00:00Z"),
        ("a3", "2099-06-13T09:00:00Z"),
        ("a3", "2099-06-14T07:00:00Z"),
    ]
    # And the first request, having read both cancelled ones and one pending, answered that one with a cursor
    assert pages[0] == [("a2", "2099-06-11T09:00:00Z")]


# --- ad-hoc notifications ---------------------------------------------------------------------------------
def test_send_now_goes_over_the_preferred_channel(stack: Any, rapi: Any, contact: Any, outbox: Any) -> None:
    contact("c1", channels=["sms", "email"])

    accepted = rapi.post(
        "/v1/notifications", {"contact_id": "c1", "subject": "Clinic closed", "text": "We are closed on Friday."}
    )
    stack.drain()

    assert accepted.status == 202
    job = accepted.json()
    assert (job["type"], job["queue"]) == ("notification.send", "notifications")
    done = rapi.get(f"/v1/jobs/{job['id']}").json()
    assert done["state"] == "completed" and done["result"]["delivered_via"] == "sms"
    assert outbox.sms == [("+447700900123", "Clinic closed: We are closed on Friday.")]
    assert outbox.emails == []


def test_send_now_with_a_template_renders_it_for_the_contact(stack: Any, rapi: Any, contact: Any, outbox: Any) -> None:
    contact("c1", name="Ada", channels=["email"])

    rapi.post(
        "/v1/notifications", {"contact_id": "c1", "template": "welcome", "context": {"practice_name": "Purple Cross"}}
    )
    stack.drain()

    [email] = outbox.emails
    assert email.subject == "Welcome to Purple Cross, Ada"


def test_send_now_is_idempotent_with_a_key(stack: Any, rapi: Any, contact: Any, outbox: Any) -> None:
    contact("c1", channels=["in_app"])
    body = {"contact_id": "c1", "subject": "Hi", "text": "Hello"}

    first = rapi.post("/v1/notifications", body, headers={"idempotency-key": "k1"})
    again = rapi.post("/v1/notifications", body, headers={"idempotency-key": "k1"})
    stack.drain()

    assert (first.status, again.status) == (202, 200) and first.json()["id"] == again.json()["id"]
    feed = rapi.get("/v1/contacts/c1/notifications").json()["items"]
    assert [(i["title"], i["body"]) for i in feed] == [("Hi", "Hello")]


def test_send_now_rejects_bad_requests(rapi: Any, contact: Any, subtests: Any) -> None:
    contact("c1")
    for body, status in [
        ({"contact_id": "nobody", "subject": "Hi", "text": "x"}, 404),
        ({"contact_id": "c1"}, 422),
        ({"contact_id": "c1", "subject": "Hi"}, 422),
        ({"contact_id": "c1", "template": "no-such-template"}, 422),
    ]:
        with subtests.test(msg=str(body)):
            assert rapi.post("/v1/notifications", body).status == status


def test_feed_pages_newest_first_and_unknown_items_are_404(stack: Any, rapi: Any, contact: Any) -> None:
    contact("c1", channels=["in_app"])
    for n in range(3):
        rapi.post("/v1/notifications", {"contact_id": "c1", "subject": f"n{n}", "text": "x"})
    stack.drain()

    first = rapi.get("/v1/contacts/c1/notifications?limit=2").json()
    rest = rapi.get(f"/v1/contacts/c1/notifications?limit=2&cursor={first['next_cursor']}").json()

    assert [i["title"] for i in first["items"] + rest["items"]] == ["n2", "n1", "n0"]
    assert rapi.post("/v1/contacts/c1/notifications/ntf_01ARZ3NDEKTSV4RRFFQ69G5FAV/read").status == 404
    assert rapi.post("/v1/contacts/c1/notifications/not-an-id/read").status == 422
