"""The template's world in one process: resources created from template.yaml, functions invoked in-process,
event sources pumped as Lambda would. Tests drive it step by step; the local runner drives it with threads.

Thread safety: boto3 clients are shared (they are thread-safe; they are created under a lock from their own
session). Functions share this process and its module state (a batch processor, an API resolver, a logger's
keys), so each function runs one invocation at a time — as one warm Lambda sandbox would — while different
functions run side by side.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from conveyor_local import moto_fixes
from conveyor_local.event_sources import SqsSource, StreamSource
from conveyor_local.gateway import Gateway
from conveyor_local.lambdas import invoke, load_handler
from conveyor_local.schedules import SCHEDULE_TYPES, Schedule, schedules_of
from conveyor_local.template import ACCOUNT, FunctionSpec, Template

log = logging.getLogger("conveyor_local")
RUN_EVENT_TYPES = ("HttpApi", "SQS", "DynamoDB", *SCHEDULE_TYPES)

__all__ = ["SCHEDULE_TYPES", "FunctionTimeout", "Stack"]


class FunctionTimeout(RuntimeError):
    """An invocation ran past the function's Timeout: Lambda would have stopped it and reported an error."""


class Stack:
    def __init__(
        self,
        template_path: str | Path = "template.yaml",
        *,
        parameters: dict[str, str] | None = None,
        region: str = "us-east-1",
        timeout_scale: float = 1.0,
        own_emulator: bool = False,
    ) -> None:
        self.template = Template(template_path, parameters=parameters, region=region)
        self.region = region
        # The emulator is conveyor_local's own (conveyor_local.emulator: moto_fixes run there), in another process
        self.own_emulator = own_emulator
        # An invocation times out past its function's Timeout x this: on a loaded machine the one process's threads
        # (functions, pollers) wait for each other and for the emulator, which a Lambda sandbox's vCPU never does.
        self.timeout_scale = timeout_scale
        self._clients: dict[str, Any] = {}
        self._function_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)

    # --- setup -------------------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        found = self._clients.get(service)
        if found is None:
            found = self._clients[service] = _shared_client(service, self.region)
        return found

    def provision(self) -> Stack:
        moto_fixes.install()  # for moto in this process (mock_aws, the embedded emulator); harmless otherwise
        self.template.provision(self.client)
        self._register_mappings()
        self.functions: dict[str, FunctionSpec] = self.template.functions()
        self._point_at_emulator()
        self._share_environment()
        ses = self.client("sesv2")
        for sender in self.template.sender_identities():
            try:
                ses.create_email_identity(EmailIdentity=sender)
            except ses.exceptions.AlreadyExistsException:  # an external emulator kept it from an earlier run
                pass
        self.gateway = Gateway(self.template, self.invoke, functions=self.functions)
        self.sources = self._sources()
        self.schedules: list[Schedule] = schedules_of(self.functions, self.template.resolve)
        return self

    def _register_mappings(self) -> None:
        """Functions and their event source mappings exist in the emulator's Lambda API (pause/resume manage
        them there); the pollers below deliver, obeying each mapping's State.

        moto would deliver to a mapped function by itself (through Docker), consuming what the pollers must
        deliver, unless conveyor_local.moto_fixes runs where moto does: in this process (mock_aws), or in the
        embedded emulator's. Against any other emulator mappings are not registered, and the local queues
        simply cannot be paused."""
        queue_arns = {
            a["Arn"]
            for k, a in self.template.attributes.items()
            if self.template.resources[k].get("Type") == "AWS::SQS::Queue"
        }
        if not (self.own_emulator or _moto_in_process(self.region, queue_arns)):
            log.warning("event source mappings not registered (the emulator runs elsewhere): pause/resume is off")
            return
        self.template.register_functions(self.client)

    def _point_at_emulator(self) -> None:
        """Every function's AWS_ENDPOINT_URL is the emulator this process talks to: the template declares it empty
        (real AWS when deployed), and an empty value here would send a local function to real AWS."""
        endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
        for spec in self.functions.values():
            spec.environment["AWS_ENDPOINT_URL"] = endpoint

    def _share_environment(self) -> None:
        """Functions share one process: their variables go into its environment, and must agree."""
        seen: dict[str, tuple[str, str]] = {}
        for spec in self.functions.values():
            for name, value in spec.environment.items():
                if name in seen and seen[name][1] != value:
                    log.warning(
                        "%s and %s set %s differently; locally they share one process and both see %r",
                        seen[name][0],
                        spec.logical_id,
                        name,
                        value,
                    )
                seen[name] = (spec.logical_id, value)
            os.environ.update(spec.environment)

    def warm_up(self) -> None:
        """Import every function's handler now (as provisioned concurrency would): import errors surface at start."""
        for spec in self.functions.values():
            load_handler(spec)

    def skipped_events(self) -> list[str]:
        """Function events the local stack does not run ("Function.Event (Type)")."""
        return [
            f"{spec.logical_id}.{name} ({event.get('Type')})"
            for spec in self.functions.values()
            for name, event in spec.events.items()
            if event.get("Type") not in RUN_EVENT_TYPES
        ]

    def _arn_to_url(self, arn: str | None) -> str | None:
        return next(
            (
                u
                for k, u in self.template.physical.items()
                if arn and self.template.attributes.get(k, {}).get("Arn") == arn
            ),
            None,
        )

    def _sources(self) -> list[SqsSource | StreamSource]:
        found: list[SqsSource | StreamSource] = []
        for spec in self.functions.values():
            for event_name, event in spec.events.items():
                mapping = self.template.mappings.get((spec.logical_id, event_name))
                props = self.template.resolve(event.get("Properties", {}))
                if props.get("Enabled") is False:
                    continue
                reports = "ReportBatchItemFailures" in props.get("FunctionResponseTypes", [])
                filters = tuple(
                    f["Pattern"] if isinstance(f["Pattern"], str) else json.dumps(f["Pattern"])
                    for f in (props.get("FilterCriteria") or {}).get("Filters", [])
                )
                if event.get("Type") == "SQS":
                    arn = props["Queue"]
                    url = self._arn_to_url(arn)
                    if url is None:
                        raise ValueError(f"{spec.logical_id}: queue {arn} is not a queue of this template")
                    found.append(
                        SqsSource(
                            spec.logical_id,
                            url,
                            arn,
                            int(props.get("BatchSize", 10)),
                            int(props.get("MaximumBatchingWindowInSeconds", 0)),
                            reports,
                            self.region,
                            filters,
                            mapping_id=mapping,
                        )
                    )
                elif event.get("Type") == "DynamoDB":
                    failure = (props.get("DestinationConfig") or {}).get("OnFailure", {}).get("Destination")
                    found.append(
                        StreamSource(
                            spec.logical_id,
                            props["Stream"],
                            int(props.get("BatchSize", 100)),
                            reports,
                            int(props.get("MaximumRetryAttempts", -1)),
                            self._arn_to_url(failure),
                            self.region,
                            filters,
                            str(props.get("StartingPosition", "TRIM_HORIZON")),
                            bool(props.get("BisectBatchOnFunctionError", False)),
                            mapping_id=mapping,
                            window_seconds=int(props.get("MaximumBatchingWindowInSeconds", 0)),
                        )
                    )
        return found

    # --- running -----------------------------------------------------------------------------------
    def invoke(self, spec: FunctionSpec | str, event: dict[str, Any]) -> Any:
        """Run a function with an event; one invocation at a time per function (its module state is shared).

        Always this stack's spec of that function, whoever built the one passed: only it has the local environment."""
        function = self.functions[spec if isinstance(spec, str) else spec.logical_id]
        with self._function_locks[function.logical_id]:
            started = time.monotonic()
            result = invoke(function, event)
            elapsed = time.monotonic() - started
        if elapsed > function.timeout * self.timeout_scale:
            raise FunctionTimeout(
                f"{function.logical_id} ran {elapsed:.1f}s, past its {function.timeout}s Timeout"
                f"{f' x {self.timeout_scale:g}' if self.timeout_scale != 1 else ''}; "
                "Lambda would have stopped it and reported an error"
            )
        return result

    def pump(
        self,
        source: SqsSource | StreamSource,
        wait_seconds: int = 0,
        stop: threading.Event | None = None,
        *,
        hold: bool = False,
    ) -> int:
        """One batch from one source through its function; returns how many records were delivered.

        `hold`: a stream keeps its records for its batching window (the running stack's pollers, as Lambda does);
        without it what is there goes at once, so `drain` and tests need not wait out windows."""
        if isinstance(source, StreamSource):
            event = source.poll(self.client, wait_seconds, stop, hold=hold)
        else:
            event = source.poll(self.client, wait_seconds, stop)
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

    def fire(self, schedule: Schedule, now: datetime | None = None) -> Any:
        return self.invoke(schedule.function_id, schedule.event(now or datetime.now(UTC), self.region, ACCOUNT))

    def fire_schedules(self, now: datetime | None = None) -> list[Any]:
        return [self.fire(schedule, now) for schedule in self.schedules if schedule.enabled]


_CLIENTS: dict[tuple[str, str, str], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _shared_client(service: str, region: str) -> Any:
    """One client per service, region and endpoint for the whole process: building one loads its API model,
    which dominates the cost of a fresh stack (each test builds one)."""
    key = (service, region, os.environ.get("AWS_ENDPOINT_URL", ""))
    with _CLIENTS_LOCK:  # creating clients from one session is not thread-safe; using them is
        if key not in _CLIENTS:
            from botocore.config import Config

            # Account-based endpoints (e.g. <account>.streams-ddb...) are not routed by emulators.
            config = Config(account_id_endpoint_mode="disabled", retries={"mode": "standard"})
            _CLIENTS[key] = _session().client(service, region_name=region, config=config)
        return _CLIENTS[key]


@cache
def _session() -> Any:
    import boto3

    return boto3.session.Session()


def _moto_in_process(region: str, queue_arns: set[str]) -> bool:
    """Whether the emulator holding these queues is moto running in this process."""
    if "moto.sqs.models" not in sys.modules:  # no queue of this process's moto: not worth importing it to ask
        return False
    try:
        from moto.sqs.models import sqs_backends
    except ImportError:
        return False
    return queue_arns <= {q.queue_arn for q in sqs_backends[ACCOUNT][region].queues.values()}
