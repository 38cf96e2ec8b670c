"""Channel fallback, decided without AWS: in-memory senders stand in for SES, SNS and the feed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from conveyor.notify.domain import Attempt, Contact, Delivery, fallback
from conveyor.platform.errors import PermanentError, TransientError

NOW = datetime(2099, 6, 9, 9, 0, tzinfo=UTC)


def contact(**fields: Any) -> Contact:
    base: dict[str, Any] = {
        "tenant_id": "t",
        "id": "c1",
        "name": "Ada",
        "timezone": "Europe/London",
        "channels": ("email", "sms", "in_app"),
        "created_at": NOW,
        "updated_at": NOW,
        "email": "ada@example.com",
        "phone": "+447700900123",
    }
    return Contact(**{**base, **fields})


class FakeProviders:
    """Each channel answers from a script: "ok", "permanent" or "transient"; every call is remembered."""

    def __init__(self, **script: str) -> None:
        self.script, self.calls = script, []

    def senders(self) -> dict[str, Any]:
        def sender(channel: str) -> Any:
            def send(address: str) -> str:
                self.calls.append((channel, address))
                outcome = self.script.get(channel, "ok")
                if outcome == "permanent":
                    raise PermanentError(f"{channel} rejected")
                if outcome == "transient":
                    raise TransientError(f"{channel} throttled")
                return f"{channel}-id"

            return send

        return {c: sender(c) for c in ("email", "sms", "in_app")}


class Recorded(list):
    def __call__(self, attempts: list[Attempt], delivered: Attempt | None) -> None:
        self.append(([(a.channel, a.status) for a in attempts], delivered.channel if delivered else None))


NOTHING_YET = Delivery()


def run(who: Contact, providers: FakeProviders, *, delivery: Delivery = NOTHING_YET, final: bool = False):
    record = Recorded()
    outcome = fallback(delivery, who, providers.senders(), record, final=final, now=lambda: NOW)
    return outcome, record


def test_the_first_preferred_channel_that_works_delivers_and_is_recorded_with_the_delivery():
    providers = FakeProviders()
    outcome, record = run(contact(), providers)
    assert outcome.delivered is not None and outcome.delivered.provider_message_id == "email-id"
    assert providers.calls == [("email", "ada@example.com")]
    assert record == [([("email", "sent")], "email")]


def test_opted_out_and_unreachable_channels_are_skipped_with_the_reason():
    outcome, _ = run(contact(opted_out=("email",), phone=None), FakeProviders())
    assert [(a.channel, a.status, a.detail) for a in outcome.new_attempts] == [
        ("email", "skipped", "opted out"),
        ("sms", "skipped", "no phone number"),
        ("in_app", "sent", None),
    ]


def test_a_permanent_failure_falls_back_to_the_next_channel():
    outcome, _ = run(contact(), FakeProviders(email="permanent"))
    assert [(a.channel, a.status) for a in outcome.new_attempts] == [("email", "failed"), ("sms", "sent")]


def test_a_transient_failure_is_recorded_and_raised_so_the_job_retries():
    providers = FakeProviders(email="transient")
    with pytest.raises(TransientError):
        run(contact(), providers)
    assert providers.calls == [("email", "ada@example.com")]  # no fallback before the retry


def test_on_the_last_attempt_a_transient_failure_falls_back_instead():
    outcome, _ = run(contact(), FakeProviders(email="transient"), final=True)
    assert [(a.channel, a.status) for a in outcome.new_attempts] == [("email", "failed"), ("sms", "sent")]
    assert outcome.new_attempts[0].detail.startswith("gave up on the last attempt")


def test_a_retry_skips_channels_an_earlier_attempt_settled_and_keeps_the_history():
    earlier = Delivery(attempts=(Attempt("email", "failed", NOW, "rejected"), Attempt("sms", "error", NOW, "slow")))
    outcome, _ = run(contact(), FakeProviders(), delivery=earlier)
    assert [(a.channel, a.status) for a in outcome.history] == [
        ("email", "failed"),
        ("sms", "error"),
        ("sms", "sent"),
    ]


def test_a_delivery_already_marked_delivered_is_never_sent_again():
    done = Delivery(attempts=(Attempt("sms", "sent", NOW, provider_message_id="m1"),), delivered_via="sms")
    providers = FakeProviders()
    outcome, record = run(contact(), providers, delivery=done)
    assert outcome.delivered is not None and outcome.delivered.provider_message_id == "m1"
    assert providers.calls == [] and record == []


def test_a_contact_opted_out_of_everything_is_not_a_failure():
    outcome, record = run(contact(opted_out=("email", "sms", "in_app")), FakeProviders())
    assert outcome.delivered is None and outcome.opted_out_of_all
    assert record == []  # the caller records the attempts with its outcome
