import pytest
from pydantic import ValidationError

from conveyor.email.jobs import EmailPayload
from conveyor.email.templates import render, template_names
from conveyor.platform.errors import PermanentError


def test_shipped_templates():
    assert {"welcome", "appointment-reminder", "report-ready"} <= template_names()


@pytest.mark.parametrize(
    "payload",
    [
        {"to": [], "subject": "s", "text": "t"},
        {"to": ["bad"], "subject": "s", "text": "t"},
        {"to": ["a@example.com"], "subject": "s"},
        {"to": ["a@example.com"], "text": "t"},
        {"to": ["a@example.com"], "template": "missing"},
        {"to": ["a@example.com"], "cc": [f"c{i}@example.com" for i in range(50)], "subject": "s", "text": "t"},
        {"to": ["a@example.com"], "subject": "s", "text": "t", "attachments": []},
    ],
)
def test_invalid_email_payloads_are_rejected(payload):
    with pytest.raises(ValidationError):
        EmailPayload.model_validate(payload)


def test_reply_to_accepts_one_address_or_many():
    assert EmailPayload.model_validate(
        {"to": ["a@example.com"], "subject": "s", "text": "t", "reply_to": "r@example.com"}
    ).reply_to == ["r@example.com"]


def test_html_is_autoescaped_but_text_and_subject_are_not():
    email = render("welcome", {"name": "<b>Tom & Jerry</b>"})
    assert "&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;" in email.html
    assert "<b>Tom & Jerry</b>" in email.text and "<b>Tom & Jerry</b>" in email.subject


def test_optional_template_values_and_missing_required_ones():
    email = render("appointment-reminder", {"name": "Ann", "subject_name": "Rex", "starts_at_local": "Mon 9:00"})
    assert "Rex" in email.subject and " at " not in email.text
    with pytest.raises(PermanentError, match="subject_name"):
        render("appointment-reminder", {"name": "Ann", "starts_at_local": "Mon 9:00"})
