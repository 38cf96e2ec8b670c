"""The local stack builds its world from template.yaml, and can do so again on an emulator that kept it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conveyor_local.stack import Stack

ROOT = Path(__file__).resolve().parents[2]


def test_every_table_and_queue_of_the_template_exists_with_its_settings(stack: Any) -> None:
    tables = stack.client("dynamodb").list_tables()["TableNames"]
    declared = stack.template.of_type("AWS::DynamoDB::Table")
    assert sorted(tables) == sorted(stack.template.physical[name] for name in declared)

    jobs = stack.client("dynamodb").describe_table(TableName=stack.template.physical["JobsTable"])["Table"]
    assert [i["IndexName"] for i in jobs["GlobalSecondaryIndexes"]] == ["due-index"]
    assert jobs["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"

    email = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.template.physical["EmailQueue"], AttributeNames=["All"]
    )["Attributes"]
    assert email["VisibilityTimeout"] == "360"
    assert '"maxReceiveCount": 30' in email["RedrivePolicy"]


def test_senders_the_policies_allow_are_verified_so_functions_can_send(stack: Any) -> None:
    assert stack.template.sender_identities() == ["no-reply@example.com"]
    identities = stack.client("sesv2").list_email_identities()["EmailIdentities"]
    assert "no-reply@example.com" in [i["IdentityName"] for i in identities]


def test_provisioning_again_on_an_emulator_that_kept_the_resources_reuses_them(stack: Any) -> None:
    again = Stack(ROOT / "template.yaml").provision()

    assert again.template.physical == stack.template.physical
    assert again.template.attributes["JobsTable"]["StreamArn"] == stack.template.attributes["JobsTable"]["StreamArn"]


def test_a_poller_per_queue_or_stream_event_and_a_timer_per_schedule_event_of_the_template(stack: Any) -> None:
    events = [
        (spec.logical_id, name, event["Type"])
        for spec in stack.functions.values()
        for name, event in spec.events.items()
    ]
    polled = sorted(fn for fn, _, kind in events if kind in ("SQS", "DynamoDB"))
    timed = sorted(f"{fn}.{name}" for fn, name, kind in events if kind in ("Schedule", "ScheduleV2"))

    assert sorted(source.function_id for source in stack.sources) == polled
    assert sorted(schedule.name for schedule in stack.schedules) == timed
    assert timed  # the template has at least the scheduler's
    assert stack.skipped_events() == []  # every event type in the template runs locally
