"""The template's world in one process: resources created from template.yaml, functions invoked in-process,
event sources pumped as Lambda would. Tests drive it step by step; the local runner drives it with threads.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conveyor_local.event_sources import SqsSource, StreamSource
from conveyor_local.gateway import Gateway
from conveyor_local.lambdas import invoke
from conveyor_local.template import ACCOUNT, FunctionSpec, Template

SCHEDULE_TYPES = ("Schedule", "ScheduleV2")
log = logging.getLogger("conveyor.local")


class Stack:
    def __init__(self, template_path: str | Path = "template.yaml", *, parameters: dict[str, str] | None = None,
                 region: str = "us-east-1") -> None:
        self.template = Template(template_path, parameters=parameters, region=region)
        self.region = region
        self._clients: dict[str, Any] = {}

    # --- setup -------------------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3
            from botocore.config import Config

            # Account-based endpoints (e.g. <account>.streams-ddb...) are not routed by emulators.
            config = Config(account_id_endpoint_mode="disabled")
            self._clients[service] = boto3.client(service, region_name=self.region, config=config)
        return self._clients[service]

    def provision(self) -> Stack:
        self.template.provision(self.client)
        self._register_mappings()
        self.functions: dict[str, FunctionSpec] = self.template.functions()
        for spec in self.functions.values():
            os.environ.update(spec.environment)  # functions share one process: their env must agree
        sender = self.template.parameters.get("EmailFrom")
        if sender:
            self.client("sesv2").create_email_identity(EmailIdentity=sender)
        self.gateway = Gateway(self.template, self.invoke)
        self.sources = self._sources()
        return self

    def _register_mappings(self) -> None:
        """Functions and their event source mappings exist in the emulator's Lambda API (pause/resume manage
        them there); the pollers below deliver, obeying each mapping's State.

        moto delivers to a mapped function by itself when a message is sent or a stream record written: it
        would run the stub through Docker and consume the messages and stream records the pollers must
        deliver. Its delivery hooks are unhooked (possible only with moto in this process: mock_aws or a
        threaded server); against an emulator elsewhere the mappings are removed again, and the local queues
        simply cannot be paused."""
        self.template.register_functions(self.client)
        if _unhook_moto_delivery(self.region) < len(self.template.mappings):
            for uuid in self.template.mappings.values():
                self.client("lambda").delete_event_source_mapping(UUID=uuid)
            self.template.mappings.clear()
            log.warning("event source mappings not registered: the emulator's own delivery could not be turned off")

    def _sources(self) -> list[SqsSource | StreamSource]:
        found: list[SqsSource | StreamSource] = []
        for spec in self.functions.values():
            for event_name, event in spec.events.items():
                mapping = self.template.mappings.get((spec.logical_id, event_name))
                props = event.get("Properties", {})
                reports = "ReportBatchItemFailures" in props.get("FunctionResponseTypes", [])
                if event.get("Type") == "SQS":
                    arn = self.template.resolve(props["Queue"])
                    url = next(u for k, u in self.template.physical.items()
                               if self.template.attributes.get(k, {}).get("Arn") == arn)
                    found.append(SqsSource(spec.logical_id, url, arn, int(props.get("BatchSize", 10)),
                                           int(props.get("MaximumBatchingWindowInSeconds", 0)), reports, self.region,
                                           mapping_id=mapping))
                elif event.get("Type") == "DynamoDB":
                    failure = (props.get("DestinationConfig") or {}).get("OnFailure", {}).get("Destination")
                    failure_arn = self.template.resolve(failure) if failure else None
                    failure_url = next((u for k, u in self.template.physical.items()
                                        if failure_arn and self.template.attributes.get(k, {}).get("Arn") == failure_arn),
                                       None)
                    found.append(StreamSource(spec.logical_id, self.template.resolve(props["Stream"]),
                                              int(props.get("BatchSize", 100)), reports,
                                              int(props.get("MaximumRetryAttempts", -1)), failure_url, self.region,
                                              mapping_id=mapping))
        return found

    # --- running -----------------------------------------------------------------------------------
    def invoke(self, spec: FunctionSpec | str, event: dict[str, Any]) -> Any:
        return invoke(self.functions[spec] if isinstance(spec, str) else spec, event)

    def pump(self, source: SqsSource | StreamSource) -> int:
        """One batch from one source through its function; returns how many records were delivered."""
        event = source.poll(self.client)
        if event is None:
            return 0
        try:
            result, failed = self.invoke(source.function_id, event), False
        except Exception:  # noqa: BLE001 - a crashed invocation: the source retries, as Lambda does
            log.exception("%s failed on a batch of %d; it will be retried", source.function_id, len(event["Records"]))
            result, failed = None, True
        source.settle(self.client, event, result, failed)
        return len(event["Records"])

    def drain(self, max_rounds: int = 50) -> int:
        """Pump every source until a full round delivers nothing (messages still delayed or invisible wait)."""
        total = 0
        for _ in range(max_rounds):
            delivered = sum(self.pump(source) for source in self.sources)
            total += delivered
            if not delivered:
                break
        return total

    def scheduled_functions(self) -> list[tuple[FunctionSpec, str]]:
        return [(spec, str(e.get("Properties", {}).get("ScheduleExpression", spec.events and "")))
                for spec in self.functions.values() for e in spec.events.values() if e.get("Type") in SCHEDULE_TYPES]

    def fire_schedules(self, now: datetime | None = None) -> list[Any]:
        return [self.invoke(spec, scheduled_event(spec.logical_id, now, self.region))
                for spec, _ in self.scheduled_functions()]


def _unhook_moto_delivery(region: str) -> int:
    """Detach moto's push delivery from every queue and table in this process; how many mappings it had."""
    try:
        from moto.dynamodb.models import dynamodb_backends
        from moto.sqs.models import sqs_backends
    except ImportError:
        return 0
    hooked = [*(q.lambda_event_source_mappings for q in sqs_backends[ACCOUNT][region].queues.values()),
              *(t.lambda_event_source_mappings for t in dynamodb_backends[ACCOUNT][region].tables.values())]
    detached = sum(len(mappings) for mappings in hooked)
    for mappings in hooked:
        mappings.clear()
    return detached


def scheduled_event(rule: str, now: datetime | None = None, region: str = "us-east-1") -> dict[str, Any]:
    """An EventBridge 'Scheduled Event', as a schedule delivers it to its target."""
    at = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"version": "0", "id": "local-" + at, "detail-type": "Scheduled Event", "source": "aws.events",
            "account": ACCOUNT, "time": at, "region": region,
            "resources": [f"arn:aws:events:{region}:{ACCOUNT}:rule/{rule}"], "detail": {}}
