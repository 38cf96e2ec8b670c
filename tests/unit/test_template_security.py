"""template.yaml passes checkov (`make checkov`, part of `make lint`): what it asked for, and why each skip stays."""

from __future__ import annotations

import json
from pathlib import Path

from cfnlint.decode.cfn_yaml import loads

ROOT = Path(__file__).resolve().parents[2]
DOC = loads((ROOT / "template.yaml").read_text())
RESOURCES = DOC["Resources"]


def test_every_api_request_leaves_one_access_log_line_with_request_route_status_latency_and_key_id():
    settings = RESOURCES["HttpApi"]["Properties"]["AccessLogSettings"]
    line = json.loads(settings["Format"])
    assert line["requestId"] == "$context.requestId"
    assert line["route"] == "$context.routeKey"  # the route template: never the ids in the path
    assert line["status"] == "$context.status"
    assert line["latencyMs"] == "$context.responseLatency"
    assert line["keyId"] == "$context.authorizer.key_id"
    # never the key (nor headers, the raw path or the query string, which can carry personal data)
    assert not any(word in settings["Format"].lower() for word in ("header", "authorization", "querystring", ".path"))
    group = settings["DestinationArn"]["Fn::GetAtt"][0]
    assert RESOURCES[group]["Type"] == "AWS::Logs::LogGroup"
    assert RESOURCES[group]["Properties"]["RetentionInDays"] == {"Ref": "AccessLogRetentionDays"}


def test_the_key_id_the_access_log_names_is_in_the_authorizers_context():
    from conveyor.platform.auth.authorizer import context_of
    from conveyor.platform.auth.keys import Principal

    context = context_of(Principal(tenant_id="t", scopes=frozenset({"jobs:read"}), key_id="abc123"))
    assert context["key_id"] == "abc123" and "key" not in context


def test_a_failed_scheduler_run_is_not_retried_into_an_overlap_and_lands_in_a_queue_that_alarms():
    scheduler = RESOURCES["SchedulerFunction"]["Properties"]
    assert scheduler["EventInvokeConfig"]["MaximumRetryAttempts"] == 0
    queue = scheduler["DeadLetterQueue"]["TargetArn"]["Fn::GetAtt"][0]
    assert scheduler["DeadLetterQueue"]["Type"] == "SQS" and RESOURCES[queue]["Type"] == "AWS::SQS::Queue"
    watched = [
        r["Properties"]
        for r in RESOURCES.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"]["Dimensions"][0]["Value"] == {"Fn::GetAtt": [queue, "QueueName"]}
    ]
    assert watched and watched[0]["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_the_alarm_topic_is_encrypted_with_a_rotated_key_cloudwatch_may_publish_with():
    key = RESOURCES["AlarmTopic"]["Properties"]["KmsMasterKeyId"]["Ref"]
    properties = RESOURCES[key]["Properties"]
    assert RESOURCES[key]["Type"] == "AWS::KMS::Key" and properties["EnableKeyRotation"] is True
    [cloudwatch] = [
        s for s in properties["KeyPolicy"]["Statement"] if s["Principal"].get("Service") == "cloudwatch.amazonaws.com"
    ]
    assert set(cloudwatch["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert cloudwatch["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_every_checkov_skip_sits_on_its_resource_with_a_reason():
    skips = [
        (name, skip)
        for name, resource in RESOURCES.items()
        for skip in ((resource.get("Metadata") or {}).get("checkov") or {}).get("skip", [])
    ]
    assert skips
    for name, skip in skips:
        assert skip["id"].startswith("CKV_AWS_"), name
        assert len(skip.get("comment", "")) > 40, (name, skip)


def test_the_local_stack_knows_every_resource_type_it_does_not_create():
    from conveyor_local.template import Template

    # Only the alarm topic and its subscription (alarms never fire locally) are named at start, nothing new
    assert set(Template(ROOT / "template.yaml").unsupported().values()) <= {"AWS::SNS::Topic", "AWS::SNS::Subscription"}
