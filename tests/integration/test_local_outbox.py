"""The local stack's outbox: every email sent through (emulated) SES is kept as <job-id>.eml, every SMS as .sms.txt."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import boto3
from moto import mock_aws

from conveyor_local.outbox import Outbox


def send(ses, **extra) -> str:
    return ses.send_email(
        FromEmailAddress="no-reply@example.com",
        Destination={"ToAddresses": ["ada@example.com"]},
        Content={
            "Simple": {
                "Subject": {"Data": "Hi"},
                "Body": {"Text": {"Data": "plain words"}, "Html": {"Data": "<p>html words</p>"}},
            }
        },
        **extra,
    )["MessageId"]


def test_an_email_sent_through_ses_is_written_as_eml_named_after_its_job(tmp_path: Path) -> None:
    with mock_aws():
        outbox = Outbox(tmp_path).install()
        try:
            # Given an SES client created after the outbox is in place, and a verified sender
            ses = boto3.client("sesv2", region_name="us-east-1")
            ses.create_email_identity(EmailIdentity="no-reply@example.com")

            # When a job sends an email tagged with its id, twice (say, a retry)
            tags = [{"Name": "job_id", "Value": "job_01ABC"}, {"Name": "tenant", "Value": "t1"}]
            first = send(ses, EmailTags=tags)
            send(ses, EmailTags=tags)
        finally:
            outbox.uninstall()

    # Then both copies are kept, the first as <job-id>.eml, with both parts and the SES ids
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job_01ABC-2.eml", "job_01ABC.eml"]
    email = message_from_bytes((tmp_path / "job_01ABC.eml").read_bytes(), policy=policy.default)
    assert email["To"] == "ada@example.com" and email["Subject"] == "Hi"
    assert email["X-SES-Message-ID"] == first and email["X-SES-Tag-tenant"] == "t1"
    assert email.get_body(("plain",)).get_content().strip() == "plain words"
    assert "html words" in email.get_body(("html",)).get_content()


def test_a_refused_send_leaves_no_eml_and_an_uninstalled_outbox_writes_nothing(tmp_path: Path) -> None:
    with mock_aws():
        outbox = Outbox(tmp_path).install()
        ses = boto3.client("sesv2", region_name="us-east-1")
        try:
            send(ses)  # the sender is not verified: SES refuses
        except ses.exceptions.MessageRejected:
            pass
        outbox.uninstall()
        ses_after = boto3.client("sesv2", region_name="us-east-1")
        ses_after.create_email_identity(EmailIdentity="no-reply@example.com")
        send(ses_after)
    assert list(tmp_path.iterdir()) == []


def test_an_sms_sent_through_sns_is_written_as_sms_txt_named_after_the_job_sending_it(tmp_path: Path) -> None:
    from conveyor.platform.observability import logger

    with mock_aws():
        outbox = Outbox(tmp_path).install()
        try:
            # Given an SNS client created after the outbox is in place
            sns = boto3.client("sns", region_name="us-east-1")
            topic = sns.create_topic(Name="alarms")["TopicArn"]
            # When a job sends an SMS (the worker has appended its id to the log keys), and a topic is published to
            logger.append_keys(job_id="job_01SMS")
            try:
                sent = sns.publish(PhoneNumber="+447700900123", Message="Rex: appointment at 10:00")["MessageId"]
            finally:
                logger.remove_keys(["job_id"])
            sns.publish(TopicArn=topic, Message="not a text message")
        finally:
            outbox.uninstall()

    # Then the SMS is in the outbox, named after the job, with its number, id and text; the topic message is not
    assert [p.name for p in tmp_path.iterdir()] == ["job_01SMS.sms.txt"]
    text = (tmp_path / "job_01SMS.sms.txt").read_text()
    assert "To: +447700900123" in text and f"X-SNS-Message-ID: {sent}" in text
    assert text.endswith("\n\nRex: appointment at 10:00\n")


def test_clearing_the_outbox_removes_what_an_earlier_run_sent_and_nothing_else(tmp_path: Path) -> None:
    for name in ("job_1.eml", "job_1-2.eml", "job_2.sms.txt", "notes.md"):
        (tmp_path / name).write_text("x")
    assert Outbox(tmp_path).clear() == 3
    assert [p.name for p in tmp_path.iterdir()] == ["notes.md"]
