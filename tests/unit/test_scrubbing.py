"""Personal data never leaves in Sentry events or logs: every email and phone shape a client may give is masked."""

from __future__ import annotations

import io
import json
import logging

import pytest

from conveyor.platform.observability import scrub_event, scrub_text

MASKED = [
    # (what a message may contain, what leaves the process)
    ("ann@example.com", "[email]"),
    ("josé.müller@bücher.de", "[email]"),
    ("Email address is not verified: JOSÉ.MÜLLER@EXAMPLE.COM", "Email address is not verified: [email]"),
    ("<ü@例え.jp>", "<[email]>"),
    ("+447700900123", "[phone]"),
    ("+1 (555) 123-4567", "[phone]"),
    ("(555) 123-4567", "[phone]"),
    ("555-123-4567", "[phone]"),
    ("5551234567", "[phone]"),
    ("call 0049 30 1234567 now", "call [phone] now"),
    ("0044 7700 900123", "[phone]"),
    ("01 23 45 67 89", "[phone]"),
    ("447700900123", "[phone]"),
    ("030 1234567", "[phone]"),
    (
        "Invalid parameter: PhoneNumber Reason: 447700900123 is not valid",
        "Invalid parameter: PhoneNumber Reason: [phone] is not valid",
    ),
]
KEPT = [
    # ids, dates, times, sizes and versions are not personal data
    "job_01JD5A2ZQ4M8F3V6T7W9X0Y1Z2",
    "2026-12-01T10:00:00Z",
    "0001-01-01",
    "9999-12-31T22:00:00+09:00",
    "request body is 300000 bytes",
    "attempt 3 of 5, retry in 120 s",
    "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
    "release 1.2.3",
    "took 1.234567 s",
]


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_emails_and_phone_numbers_in_any_text_are_masked(text, expected):
    assert scrub_text(text) == expected


@pytest.mark.parametrize("text", KEPT)
def test_ids_dates_and_numbers_that_are_not_contact_details_are_kept(text):
    assert scrub_text(text) == text


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_sentry_events_are_masked_in_messages_and_exception_values(text, expected):
    event = {"message": text, "exception": {"values": [{"type": "PermanentError", "value": text}]}}
    scrubbed = scrub_event(event, {})
    assert scrubbed["message"] == expected
    assert scrubbed["exception"]["values"][0]["value"] == expected


def test_log_lines_mask_contact_details_in_messages_extra_keys_and_exceptions():
    # Given the shared logger writing to a buffer
    from conveyor.platform.observability import logger

    buffer = io.StringIO()
    handler = logger.registered_handler
    previous, handler.stream = handler.stream, buffer
    try:
        # When a line carries contact details in its message, an extra key and an exception
        try:
            raise RuntimeError("SES rejected josé.müller@bücher.de")
        except RuntimeError:
            logger.exception("send to 0044 7700 900123 failed", extra={"reason": "to josé.müller@bücher.de"})
    finally:
        handler.stream = previous
    # Then none of them is in the line, which is still JSON
    line = json.loads(buffer.getvalue().splitlines()[-1])
    assert line["message"] == "send to [phone] failed"
    assert line["reason"] == "to [email]"
    assert "josé" not in line["exception"] and "[email]" in line["exception"]
    assert logging.getLevelName(line["level"]) == logging.ERROR
