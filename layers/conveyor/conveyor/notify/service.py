"""Notify's use cases: contacts, sending a notification now, delivering one over the preferred channels (for
notify's own job type, and for other capabilities such as reminders), the in-app feed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from conveyor import email, jobs
from conveyor.jobs import JobContext, registry
from conveyor.notify import repository
from conveyor.notify.domain import (
    SEND_JOB_TYPE,
    Attempt,
    Contact,
    FeedItem,
    Message,
    Outcome,
    SourcedContact,
    already_delivered,
    fallback,
)
from conveyor.platform.clock import utcnow
from conveyor.platform.dynamo import decode_cursor, encode_cursor
from conveyor.platform.errors import Conflict, InvalidCursor, NotFound, PermanentError


# --- contacts ------------------------------------------------------------------------------------------
def put_contact(tenant_id: str, contact_id: str, fields: dict[str, Any]) -> tuple[Contact, bool]:
    """Create or replace a contact (`fields`: Contact's, but its keys and timestamps). Returns (contact, created)."""
    now = utcnow()
    existing = repository.get_contact(tenant_id, contact_id, consistent=True)
    contact = Contact(
        tenant_id=tenant_id,
        id=contact_id,
        created_at=existing.created_at if existing else now,
        updated_at=now,
        **fields,
    )
    if not repository.put_contact(contact, replaces=existing):
        raise Conflict("the contact changed while this request was applied; retry")
    for listener in _listeners():
        listener(existing, contact)
    return contact, existing is None


def sync_contacts(tenant_id: str, items: list[SourcedContact]) -> list[str]:
    """Bring contacts in step with another system (a CRM), at most 100 at a time; for each item (in order):
    "created", "updated", "deleted" (marked deleted, kept) or "unchanged" (the stored one is as new or newer).
    Idempotent: a replayed or older item changes nothing. One BatchGetItem for the batch, then one conditional
    PutItem per changed contact (1 WCU; a transaction would cost 2 per item); a contact another writer moved
    meanwhile is applied again against a fresh read."""
    if len(items) > 100:
        raise ValueError("at most 100 contacts per call")
    existing = repository.get_contacts(tenant_id, [i.id for i in items])
    now = utcnow()
    outcomes: list[str] = []
    for item in items:
        before = existing.get(item.id)
        if not item.applies_over(before):
            outcomes.append("unchanged")
            continue
        after = _sourced(tenant_id, item, before, now)
        if not repository.put_contact(after, replaces=before):
            outcomes.append(_sync_one(tenant_id, item))
            continue
        existing[item.id] = after
        for listener in _listeners():
            listener(before, after)
        outcomes.append("deleted" if item.deleted else "updated" if before else "created")
    return outcomes


def _sync_one(tenant_id: str, item: SourcedContact, attempts: int = 5) -> str:
    for _ in range(attempts):
        before = repository.get_contact(tenant_id, item.id, consistent=True)
        if not item.applies_over(before):
            return "unchanged"
        after = _sourced(tenant_id, item, before, utcnow())
        if repository.put_contact(after, replaces=before):
            for listener in _listeners():
                listener(before, after)
            return "deleted" if item.deleted else "updated" if before else "created"
    raise Conflict(f"contact {item.id!r} kept changing while it was synced; retry")


def _sourced(tenant_id: str, item: SourcedContact, before: Contact | None, now: Any) -> Contact:
    if item.deleted and before is not None:
        return replace(before, updated_at=now, source_updated_at=item.updated_at, deleted_at=item.updated_at)
    channels = tuple(c for c, address in (("email", item.email), ("sms", item.phone)) if address) + ("in_app",)
    return Contact(
        tenant_id=tenant_id,
        id=item.id,
        name=item.name,
        timezone=item.timezone,
        channels=before.channels if before else channels,
        created_at=before.created_at if before else now,
        updated_at=now,
        email=item.email,
        phone=item.phone,
        opted_out=before.opted_out if before else (),
        quiet_start=before.quiet_start if before else None,
        quiet_end=before.quiet_end if before else None,
        source=item.source,
        source_updated_at=item.updated_at,
        deleted_at=None,
    )


ContactListener = Callable[[Contact | None, Contact], None]  # (before, after)
_LISTENERS: list[ContactListener] = []


def on_contact_changed(listener: ContactListener) -> None:
    """Let a capability above notify follow contact changes as they are stored (e.g. reminders re-plans a
    contact's medication doses when their time zone changes). Registered by a module in that capability's
    `job_modules` (conveyor/capabilities.py), which notify loads before telling listeners."""
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)


def _listeners() -> list[ContactListener]:
    # An instance that has imported no job module yet (an API instance serving only /v1/contacts) has no listener
    # registered: load them (once per process) rather than miss a change.
    registry.load_all()
    return list(_LISTENERS)


def find_contact(tenant_id: str, contact_id: str) -> Contact | None:
    return repository.get_contact(tenant_id, contact_id)


def contacts_page(tenant_id: str, *, after: str | None, limit: int = 100) -> tuple[list[Contact], str | None]:
    """A page of the tenant's contacts (id order) and the cursor of the next one (None: that was the last)."""
    return repository.contacts_page(tenant_id, after=after, limit=limit)


def get_contact(tenant_id: str, contact_id: str) -> Contact:
    contact = repository.get_contact(tenant_id, contact_id)
    if contact is None:
        raise NotFound(f"contact {contact_id!r} not found")
    return contact


# --- sending -------------------------------------------------------------------------------------------
def send(tenant_id: str, payload: dict[str, Any], idempotency_key: str | None) -> tuple[jobs.Job, bool]:
    """Enqueue a notification.send job for an existing contact (payload: the job type's)."""
    get_contact(tenant_id, str(payload["contact_id"]))
    return jobs.enqueue(tenant_id, jobs.NewJob(SEND_JOB_TYPE, payload=payload), idempotency_key)


def message_from_template(name: str, context: dict[str, Any]) -> Message:
    rendered = email.render(name, context)
    return Message(
        subject=rendered.subject, text=rendered.text or rendered.subject, html=rendered.html, sms=rendered.sms
    )


def delivered(job: JobContext) -> Outcome | None:
    """What an earlier attempt of this job delivered, if it did (a retry then records, never sends)."""
    delivery = repository.get_delivery(job.tenant_id, job.job_id)
    sent = already_delivered(delivery, utcnow())
    return Outcome(sent, [], list(delivery.attempts)) if sent else None


def deliver(contact: Contact, message: Message, job: JobContext, *, source: dict[str, Any]) -> Outcome:
    """Send `message` to `contact` once over the first channel that works, recording every attempt in the job's
    delivery log, and the delivery itself before the job finishes (a retried or re-delivered job never sends
    over a channel twice; the one gap no one can close without provider-side idempotency: a crash between the
    provider's "sent" and our write)."""

    from conveyor.notify import channels  # the providers: only the worker delivers

    def record(attempts: list[Attempt], sent: Attempt | None) -> None:
        repository.record_attempts(job.tenant_id, job.job_id, contact.id, attempts, delivered=sent)

    outcome = fallback(
        repository.get_delivery(job.tenant_id, job.job_id),
        contact,
        channels.senders(contact, message, job, source),
        record,
        final=job.attempt >= job.max_attempts,
        now=utcnow,
    )
    if outcome.delivered is None and outcome.new_attempts:
        record(outcome.new_attempts, None)
    return outcome


# --- deliveries on behalf of other capabilities ------------------------------------------------------------
Source = Callable[[str, JobContext], dict[str, Any]]
_SOURCES: dict[str, Source] = {}


def on_behalf_of(kind: str, handler: Source) -> None:
    """Let a capability above notify (e.g. reminders) handle notification.send jobs that name one of its items
    (`<kind>_id` in the payload): it checks the item and calls `deliver`. Registered when its job module loads."""
    _SOURCES[kind] = handler


def source(kind: str) -> Source:
    handler = _SOURCES.get(kind)
    if handler is None:
        raise PermanentError(f"no capability delivers notifications for {kind!r} items")
    return handler


# --- the in-app feed -----------------------------------------------------------------------------------
def feed(tenant_id: str, contact_id: str, *, limit: int, cursor: str | None) -> tuple[list[FeedItem], str | None]:
    get_contact(tenant_id, contact_id)
    fields = decode_cursor(cursor, {"id": "ntf_"})
    after = fields["id"] if fields else None
    if after is not None and "#" in after:
        raise InvalidCursor("invalid cursor")
    items, last = repository.feed(tenant_id, contact_id, limit=limit, after=after)
    return items, encode_cursor(id=last) if last else None


def mark_read(tenant_id: str, contact_id: str, notification_id: str) -> FeedItem:
    item = repository.mark_read(tenant_id, contact_id, notification_id, utcnow())
    if item is None:
        raise NotFound(f"notification {notification_id!r} not found")
    return item
