"""template.yaml carries the operations wiring: alarms to a topic, retention parameters, public health routes,
least-privilege pause/resume, the one due index the scheduler's job sweeps query."""

from __future__ import annotations

from pathlib import Path

import pytest
from cfnlint.decode.cfn_yaml import loads

ROOT = Path(__file__).resolve().parents[2]
DOC = loads((ROOT / "template.yaml").read_text())
RESOURCES = DOC["Resources"]
FAMILIES = ["Email", "Notifications", "Reminders", "Reports", "Webhooks", "Sync"]


def alarms() -> dict[str, dict]:
    return {k: v["Properties"] for k, v in RESOURCES.items() if v["Type"] == "AWS::CloudWatch::Alarm"}


def watched(namespace: str, metric: str) -> set[str]:
    """Logical ids of what alarms watch for this metric (the resource behind the dimension)."""
    found = set()
    for props in alarms().values():
        if props["Namespace"] == namespace and props["MetricName"] == metric:
            value = props["Dimensions"][0]["Value"]
            found.add(value.get("Ref") or value["Fn::GetAtt"][0])
    return found


def test_every_dead_letter_queue_alarms_as_soon_as_it_holds_a_message():
    assert watched("AWS/SQS", "ApproximateNumberOfMessagesVisible") >= {f"{f}DeadLetterQueue" for f in FAMILIES}
    for props in alarms().values():
        if props["MetricName"] == "ApproximateNumberOfMessagesVisible":
            assert (props["Threshold"], props["ComparisonOperator"]) == (0, "GreaterThanThreshold")


def test_every_queue_alarms_on_the_age_of_its_oldest_message():
    assert watched("AWS/SQS", "ApproximateAgeOfOldestMessage") == {f"{f}Queue" for f in FAMILIES}


def test_worker_errors_and_throttles_and_the_dispatcher_alarm():
    assert "WorkerFunction" in watched("AWS/Lambda", "Errors")
    assert "WorkerFunction" in watched("AWS/Lambda", "Throttles")
    assert "DispatcherFunction" in watched("AWS/Lambda", "Errors")
    assert "DispatcherFunction" in watched("AWS/Lambda", "IteratorAge")


def test_alarms_notify_one_topic_with_an_optional_email_subscription():
    for name, props in alarms().items():
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
    subscription = RESOURCES["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    assert DOC["Parameters"]["AlarmEmail"]["Default"] == ""


@pytest.mark.parametrize(
    ("parameter", "variable", "default"),
    [("CompletedRetentionDays", "COMPLETED_RETENTION_DAYS", 7), ("FailedRetentionDays", "FAILED_RETENTION_DAYS", 30)],
)
def test_retention_days_are_deployment_parameters_given_to_the_functions_that_settle_jobs(parameter, variable, default):
    assert DOC["Parameters"][parameter]["Default"] == default
    for function in ("ApiFunction", "WorkerFunction", "SchedulerFunction"):
        assert RESOURCES[function]["Properties"]["Environment"]["Variables"][variable] == {"Ref": parameter}


def test_public_routes_are_exactly_the_apis_public_paths():
    from conveyor.api.app import CRM_WEBHOOK_ROUTE, PUBLIC_PATHS

    events = RESOURCES["ApiFunction"]["Properties"]["Events"].values()
    public = {
        e["Properties"]["Path"] for e in events if (e["Properties"].get("Auth") or {}).get("Authorizer") == "NONE"
    }
    # ...and the pages of capabilities that authenticate themselves (the dashboard's signed session cookie)
    from conveyor.capabilities import CAPABILITIES

    pages = {path for c in CAPABILITIES if c.pages for path in (c.pages[0], c.pages[0] + "/{proxy+}")}
    assert pages == {"/dashboard", "/dashboard/{proxy+}"}
    # ...and CRM webhooks, verified with each CRM's own scheme (conveyor.sync.service.receive_webhook)
    assert public == set(PUBLIC_PATHS) | pages | {CRM_WEBHOOK_ROUTE}
    assert {"/health", "/health/ready"} <= public


def test_the_api_may_only_pause_the_workers_own_mappings():
    statements = RESOURCES["ApiFunction"]["Properties"]["Policies"][0]["Statement"]
    (update,) = [s for s in statements if "lambda:UpdateEventSourceMapping" in s["Action"]]
    assert update["Condition"]["StringEquals"]["lambda:FunctionArn"] == {"Fn::GetAtt": ["WorkerFunction", "Arn"]}
    env = RESOURCES["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert env["WORKER_FUNCTION"] == {"Ref": "WorkerFunction"}


def test_the_jobs_table_has_one_sparse_keys_only_index_for_the_sweeps():
    # Delayed jobs and the watch over queued and active jobs share it: no index costs a write when a job is claimed
    table = RESOURCES["JobsTable"]["Properties"]
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "due-index"
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["due_shard", "due_at"]
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    scheduler = RESOURCES["SchedulerFunction"]["Properties"]["Policies"][0]["Statement"][0]["Resource"]
    assert scheduler == [{"Fn::Sub": "${JobsTable.Arn}/index/due-index"}]


def test_the_sentry_dsn_can_come_from_ssm_or_secrets_manager_read_only_when_named():
    policy = RESOURCES["SentryDsnReadPolicy"]
    assert policy["Condition"] == "ReadsSentryDsn"
    variables = DOC["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["SENTRY_DSN_PARAMETER"] == {"Ref": "SentryDsnParameter"}
    assert variables["SENTRY_DSN_SECRET"] == {"Ref": "SentryDsnSecret"}
    for name, resource in RESOURCES.items():
        if resource["Type"] == "AWS::Serverless::Function":
            conditional = {"Fn::If": ["ReadsSentryDsn", {"Ref": "SentryDsnReadPolicy"}, {"Ref": "AWS::NoValue"}]}
            assert conditional in resource["Properties"]["Policies"], name
