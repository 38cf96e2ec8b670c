"""Notify's domain: contacts, delivery attempts, the in-app feed, and channel fallback (pure, no I/O).

Fallback, in the contact's order of preference: a channel the contact opted out of, or has no address for, is
skipped; one that fails permanently falls back to the next; a transient failure (throttling, 5xx) is recorded
and raised, so the job is retried, except on the job's last attempt, where it falls back instead. A channel
settled (failed or skipped) by an earlier attempt of the same job is not tried again, and a delivery marked
delivered is never sent again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from conveyor.platform.errors import PermanentError, TransientError

SEND_JOB_TYPE = "notification.send"  # the job type every notification goes out as
CHANNELS: tuple[str, ...] = ("email", "sms", "in_app")
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"  # no '#': ids are parts of sort keys
SMS_MAX_CHARS = 600  # several SMS segments at most; longer texts are cut

AttemptStatus = Literal["sent", "failed", "skipped", "error"]  # error: transient, the job retries


@dataclass(frozen=True)
class Contact:
    tenant_id: str
    id: str
    name: str
    timezone: str
    channels: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    email: str | None = None
    phone: str | None = None
    opted_out: tuple[str, ...] = ()
    quiet_start: str | None = None  # local HH:MM
    quiet_end: str | None = None
    # A contact kept in step with another system (a CRM connection): which one, the source record's own
    # last-modified time (an older one never overwrites a newer one), and when the source deleted it.
    source: str | None = None
    source_updated_at: datetime | None = None
    deleted_at: datetime | None = None


@dataclass(frozen=True)
class SourcedContact:
    """A contact as another system (a CRM) has it, for `sync_contacts`: the fields that system owns. Conveyor's
    own preferences (channel order, opt-outs, quiet hours) are kept on update."""

    id: str
    source: str
    updated_at: datetime  # the source's last-modified time
    name: str
    timezone: str
    email: str | None = None
    phone: str | None = None
    deleted: bool = False

    def applies_over(self, existing: Contact | None) -> bool:
        """Older or equal never overwrites newer: a replayed or out-of-order record changes nothing."""
        if existing is None:
            return not self.deleted
        if existing.source_updated_at is not None and self.updated_at <= existing.source_updated_at:
            return False
        return not (self.deleted and existing.deleted_at is not None)


@dataclass(frozen=True)
class Attempt:
    channel: str
    status: str
    at: datetime
    detail: str | None = None
    provider_message_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "status": self.status,
            "provider_message_id": self.provider_message_id,
            "detail": self.detail,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True)
class Delivery:
    """What earlier attempts of one job recorded (its delivery log)."""

    attempts: tuple[Attempt, ...] = ()
    delivered_via: str | None = None
    provider_message_id: str | None = None


@dataclass(frozen=True)
class FeedItem:
    id: str  # "ntf_<ULID of the job that sent it>": newest first by key
    contact_id: str
    title: str
    body: str
    created_at: datetime
    source: dict[str, Any] | None = None
    read_at: datetime | None = None


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    html: str | None = None
    sms: str | None = None

    @property
    def short(self) -> str:
        text = self.sms or f"{self.subject}: {self.text}"
        return text if len(text) <= SMS_MAX_CHARS else text[: SMS_MAX_CHARS - 1] + "…"


@dataclass(frozen=True)
class Outcome:
    delivered: Attempt | None
    new_attempts: list[Attempt] = field(default_factory=list)  # this run's, recorded already
    history: list[Attempt] = field(default_factory=list)  # every attempt of the job, earlier runs' first
    opted_out_of_all: bool = False

    def as_result(self) -> dict[str, Any]:
        return {
            "delivered_via": self.delivered.channel if self.delivered else None,
            "provider_message_id": self.delivered.provider_message_id if self.delivered else None,
            "attempts": [a.as_dict() for a in self.new_attempts],
        }


def address(contact: Contact, channel: str) -> str | None:
    """Where `channel` reaches the contact: an email address, a phone number, or the contact's own feed."""
    if channel == "email":
        return contact.email or None
    if channel == "sms":
        return contact.phone or None
    return contact.id


def require_content(template: str | None, subject: str | None, text: str | None) -> None:
    """A message is a template, or a subject and a text: the one rule for notifications and campaigns."""
    if template is None and not (subject and text):
        raise ValueError("give a template, or a subject and a text")


def undeliverable(attempts: Sequence[Attempt]) -> str:
    tried = "; ".join(f"{a.channel} {a.status} ({a.detail})" for a in attempts)
    return f"no channel could deliver: {tried or 'the contact has no channels'}"


def already_delivered(delivery: Delivery, now: datetime) -> Attempt | None:
    """The successful attempt of a delivery marked delivered (None if it was not)."""
    if not delivery.delivered_via:
        return None
    done = next((a for a in reversed(delivery.attempts) if a.status == "sent"), None)
    return done or Attempt(delivery.delivered_via, "sent", now, provider_message_id=delivery.provider_message_id)


Send = Callable[[str], str]  # address -> the provider's message id; raises PermanentError / TransientError
Record = Callable[[list[Attempt], Attempt | None], None]  # (new attempts, the delivered one) -> stored


def fallback(
    delivery: Delivery,
    contact: Contact,
    senders: Mapping[str, Send],
    record: Record,
    *,
    final: bool,
    now: Callable[[], datetime],
) -> Outcome:
    """Send once over the first channel that works. `record` stores attempts when a send succeeds (with the
    delivered mark, in one write) or before a transient failure is raised; otherwise the new attempts are
    returned for the caller to record with its outcome."""
    previous = list(delivery.attempts)
    done = already_delivered(delivery, now())
    if done is not None:
        return Outcome(done, [], previous)

    def attempt(channel: str, status: str, detail: str | None = None, message_id: str | None = None) -> Attempt:
        return Attempt(channel, status, now(), detail[:300] if detail else None, message_id)

    settled = {a.channel for a in previous if a.status in ("failed", "skipped")}
    new: list[Attempt] = []
    for channel in contact.channels:
        if channel in settled:
            continue
        to = address(contact, channel)
        if channel in contact.opted_out:
            new.append(attempt(channel, "skipped", "opted out"))
            continue
        if to is None:
            new.append(attempt(channel, "skipped", f"no {'email address' if channel == 'email' else 'phone number'}"))
            continue
        try:
            message_id = senders[channel](to)
        except PermanentError as exc:
            new.append(attempt(channel, "failed", exc.message))
            continue
        except TransientError as exc:
            if final:
                new.append(attempt(channel, "failed", f"gave up on the last attempt: {exc.message}"))
                continue
            record([*new, attempt(channel, "error", exc.message)], None)
            raise
        sent = attempt(channel, "sent", message_id=message_id)
        record([*new, sent], sent)
        return Outcome(sent, [*new, sent], [*previous, *new, sent])
    everything = previous + new
    opted_out = bool(everything) and all(a.status == "skipped" and a.detail == "opted out" for a in everything)
    return Outcome(None, new, everything, opted_out_of_all=opted_out)
