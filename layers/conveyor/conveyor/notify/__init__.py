"""Notify: contacts, delivery over a contact's preferred channels (email, SMS, in-app feed), the in-app feed,
and the delivery logs. Reminders (and any capability above notify) send through this public API.

Modules: domain (contacts, attempts, channel fallback: pure) · repository (contacts, delivery logs, feed
items; only it touches them) · channels (the providers) · service (use cases) · jobs (`notification.send`) ·
api (/v1/contacts, the feed, /v1/notifications).
"""

from __future__ import annotations

from conveyor.notify.domain import (
    CHANNELS,
    ID_PATTERN,
    SEND_JOB_TYPE,
    Attempt,
    Contact,
    Message,
    Outcome,
    SourcedContact,
    require_content,
    undeliverable,
)
from conveyor.notify.service import (
    contacts_page,
    deliver,
    delivered,
    find_contact,
    get_contact,
    message_from_template,
    on_behalf_of,
    on_contact_changed,
    sync_contacts,
)

__all__ = [
    "CHANNELS",
    "ID_PATTERN",
    "SEND_JOB_TYPE",
    "Attempt",
    "Contact",
    "Message",
    "Outcome",
    "SourcedContact",
    "contacts_page",
    "deliver",
    "delivered",
    "find_contact",
    "get_contact",
    "message_from_template",
    "on_behalf_of",
    "on_contact_changed",
    "sync_contacts",
    "require_content",
    "undeliverable",
]
