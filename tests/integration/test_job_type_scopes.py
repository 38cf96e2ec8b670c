"""A job type that acts on another capability's data needs that capability's scopes over /v1/jobs too:
notification.send (a tenant's contacts) needs reminders:write to enqueue and reminders:read to be seen."""

from __future__ import annotations

from factories import email_job

NOTIFY = {"type": "notification.send", "payload": {"contact_id": "c1", "subject": "Hi", "text": "Closed Friday"}}
CONTACT = {"name": "Ada", "email": "ada@example.com", "timezone": "Europe/London", "channels": ["email"]}


def test_a_jobs_write_key_cannot_message_contacts_through_the_jobs_api(api_as, sent_emails, stack):
    # Given a tenant with a contact, and a key that may only enqueue jobs
    api_as("tenant-a", "reminders:write").request("PUT", "/v1/contacts/c1", CONTACT)
    jobs_only = api_as("tenant-a", "jobs:read,jobs:write")

    # When it enqueues a notification.send job over /v1/jobs, Then it is refused as /v1/notifications refuses it
    response = jobs_only.post("/v1/jobs", NOTIFY)
    assert response.status == 403, response.body
    assert response.json()["error"]["details"] == {"required_scope": "reminders:write"}
    assert jobs_only.post("/v1/notifications", NOTIFY["payload"]).status == 403
    stack.drain()
    assert sent_emails() == []
    # And other job types still need only jobs:write
    assert jobs_only.post("/v1/jobs", email_job()).status == 202


def test_a_key_with_the_types_write_scope_may_enqueue_it_over_the_jobs_api(api_as, sent_emails, stack):
    api_as("tenant-a", "reminders:write").request("PUT", "/v1/contacts/c1", CONTACT)
    both = api_as("tenant-a", "jobs:write,reminders:write")
    assert both.post("/v1/jobs", NOTIFY).status == 202
    stack.drain()
    assert [m.destinations["ToAddresses"] for m in sent_emails()] == [["ada@example.com"]]


def test_a_jobs_read_key_cannot_see_what_was_sent_to_contacts(api_as):
    # Given a notification sent through /v1/notifications, and an email job
    notifier = api_as("tenant-a", "reminders:write,reminders:read,jobs:read")
    notifier.request("PUT", "/v1/contacts/c1", CONTACT)
    sent = notifier.post("/v1/notifications", NOTIFY["payload"]).json()["id"]
    email = api_as("tenant-a", "jobs:write").post("/v1/jobs", email_job()).json()["id"]
    reader = api_as("tenant-a", "jobs:read,jobs:write")

    # When a key with only jobs scopes reads jobs
    by_type = reader.get("/v1/jobs?type=notification.send")
    listed = reader.get("/v1/jobs").json()["items"]
    one = reader.get(f"/v1/jobs/{sent}")
    cancel = reader.post(f"/v1/jobs/{sent}/cancel")

    # Then the notification job is neither listed, readable nor cancellable; its email neighbour is
    assert by_type.status == 403 and by_type.json()["error"]["details"] == {"required_scope": "reminders:read"}
    assert [j["id"] for j in listed] == [email]
    assert one.status == 403
    assert cancel.status == 403
    # And a key that holds reminders:read sees it
    assert [j["id"] for j in notifier.get("/v1/jobs?type=notification.send").json()["items"]] == [sent]
    assert notifier.get(f"/v1/jobs/{sent}").status == 200
