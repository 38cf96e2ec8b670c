"""Counting every AWS request and Lambda invocation of a workload run under moto.

AWS requests: a botocore `before-parameter-build` / `after-call` handler pair is added to botocore's built-in
handlers, which every botocore session registers when it is created: so it sees the requests of conveyor's boto3
clients, PynamoDB's own botocore client and the local stack's event-source pollers alike (install() must run
before any session exists). Each request is attributed to the function being invoked at the time, or to the
event source mappings (`esm`) when no function is running: those are the requests Lambda's pollers make.

DynamoDB capacity is estimated from item sizes (AWS's rules: names + values, numbers ~ digits/2 + 1, 3 bytes per
list/map + 1 per element), read from moto's tables before and after each write:
  WRU = ceil(max(size before, size after) / 1 KB) per item written, x2 inside a transaction,
        plus the GSI writes the change causes (index entry added, removed or re-keyed; KEYS_ONLY indexes are not
        written when only non-key attributes change);
  RRU = ceil(size / 4 KB) per item read (Query: per request over the items returned), x0.5 eventually
        consistent, x2 in a transaction; a read of nothing still costs 0.5 (1 if consistent).
"""

from __future__ import annotations

import contextvars
import gc
import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
READS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}

_current = contextvars.ContextVar[str]("bench_function", default="esm")
_ledger: Ledger | None = None
_installed = False


@dataclass
class Invocation:
    function: str
    records: int
    ms: float
    log_bytes: int = 0


@dataclass
class Ledger:
    requests: Counter = field(default_factory=Counter)  # (caller, service, operation) -> requests
    wru: Counter = field(default_factory=Counter)  # caller -> write request units (table + GSI)
    gsi_wru: Counter = field(default_factory=Counter)
    rru: Counter = field(default_factory=Counter)
    items_written: Counter = field(default_factory=Counter)  # caller -> items written (a transaction's each)
    items_read: Counter = field(default_factory=Counter)
    item_sizes: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))  # "op" -> sizes after write
    sqs_messages: Counter = field(default_factory=Counter)  # (caller, operation) -> messages in those requests
    empty_receives: int = 0
    invocations: list[Invocation] = field(default_factory=list)
    hook_seconds: float = 0.0  # time spent in this module's hooks (taken off invocation durations)

    def merge(self, other: Ledger) -> Ledger:
        """This ledger plus another run's (a workload measured in several worlds)."""
        for name in ("requests", "wru", "gsi_wru", "rru", "items_written", "items_read", "sqs_messages"):
            getattr(self, name).update(getattr(other, name))
        for op, sizes in other.item_sizes.items():
            self.item_sizes[op].extend(sizes)
        self.empty_receives += other.empty_receives
        self.invocations += other.invocations
        self.hook_seconds += other.hook_seconds
        return self

    def requests_of(self, service: str, operation: str | None = None, caller: str | None = None) -> int:
        return sum(
            n
            for (c, s, o), n in self.requests.items()
            if s == service and (operation is None or o == operation) and (caller is None or c == caller)
        )


def install() -> None:
    """Register the hooks on every botocore session created from now on (call before any client exists)."""
    global _installed
    if _installed:
        return
    from botocore import handlers

    handlers.BUILTIN_HANDLERS.append(("before-parameter-build", _before))
    handlers.BUILTIN_HANDLERS.append(("after-call", _after))
    _installed = True


@contextmanager
def recording() -> Iterator[Ledger]:
    global _ledger
    _ledger = Ledger()
    try:
        yield _ledger
    finally:
        _ledger = None


@contextmanager
def paused() -> Iterator[None]:
    """Requests made by the benchmark itself (checking results) are not counted."""
    global _ledger
    saved, _ledger = _ledger, None
    try:
        yield
    finally:
        _ledger = saved


def wrap_invoke(invoke: Any, log_sink: Any = None) -> Any:
    """A replacement for conveyor_local's invoke(spec, event) that records each invocation and its duration."""

    def recorded(spec: Any, event: dict[str, Any]) -> Any:
        ledger = _ledger
        token = _current.set(spec.logical_id)
        hooks_before = ledger.hook_seconds if ledger else 0.0
        logs_before = log_sink.bytes if log_sink else 0
        started = time.perf_counter()
        try:
            return invoke(spec, event)
        finally:
            elapsed = time.perf_counter() - started
            _current.reset(token)
            if ledger is not None:
                elapsed -= ledger.hook_seconds - hooks_before
                ledger.invocations.append(
                    Invocation(
                        spec.logical_id,
                        len(event.get("Records", [])) or 1,
                        elapsed * 1000,
                        (log_sink.bytes - logs_before) if log_sink else 0,
                    )
                )
                if len(ledger.invocations) % 50 == 0:
                    # Untimed: moto's copies leave cyclic garbage that a large emulated world lets pile up for
                    # gigabytes before a full collection comes round.
                    gc.collect()

    return recorded


# --- hooks -------------------------------------------------------------------------------------------------
def _before(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    ledger = _ledger
    if ledger is None:
        return
    started = time.perf_counter()
    service, operation = model.service_model.service_name, model.name
    caller = _current.get()
    ledger.requests[(caller, service, operation)] += 1
    if service == "dynamodb" and operation in WRITES:
        context["bench_writes"] = _planned_writes(operation, params)
    elif service == "dynamodb" and operation in READS:
        context["bench_consistent"] = bool(params.get("ConsistentRead"))
    if service == "sqs" and operation.endswith("Batch"):
        ledger.sqs_messages[(caller, operation)] += len(params.get("Entries", []))
    elif service == "sqs" and operation in ("SendMessage", "DeleteMessage", "ChangeMessageVisibility"):
        ledger.sqs_messages[(caller, operation)] += 1
    context["bench_caller"] = caller
    ledger.hook_seconds += time.perf_counter() - started


def _after(http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    ledger = _ledger
    if ledger is None or "bench_caller" not in context:
        return
    started = time.perf_counter()
    service, operation, caller = model.service_model.service_name, model.name, context["bench_caller"]
    failed = http_response is not None and http_response.status_code >= 300
    if service == "dynamodb" and operation in WRITES:
        transaction = operation == "TransactWriteItems"
        for write in context.get("bench_writes", []):
            after = None if failed else _stored(write.table, write.key)
            _charge_write(ledger, caller, operation, write, after, transaction, failed)
    elif service == "dynamodb" and operation in READS:
        _charge_read(ledger, caller, operation, parsed, context)
    elif service == "sqs" and operation == "ReceiveMessage":
        received = len(parsed.get("Messages", []))
        if received:
            ledger.sqs_messages[(caller, operation)] += received
        else:
            ledger.empty_receives += 1
    ledger.hook_seconds += time.perf_counter() - started


# --- DynamoDB capacity ---------------------------------------------------------------------------------
@dataclass
class _Write:
    table: str
    key: dict[str, Any]
    before: dict[str, Any] | None
    new_item: dict[str, Any] | None = None  # PutItem's item (after image when it succeeds)
    delete: bool = False


def _planned_writes(operation: str, params: dict[str, Any]) -> list[_Write]:
    items: list[tuple[str, str, dict[str, Any]]] = []  # (kind, table, request)
    if operation == "TransactWriteItems":
        for entry in params.get("TransactItems", []):
            for kind in ("Put", "Update", "Delete", "ConditionCheck"):
                if kind in entry:
                    items.append((kind, entry[kind]["TableName"], entry[kind]))
    elif operation == "BatchWriteItem":
        for table, requests in params.get("RequestItems", {}).items():
            for request in requests:
                if "PutRequest" in request:
                    items.append(("Put", table, request["PutRequest"]))
                else:
                    items.append(("Delete", table, request["DeleteRequest"]))
    else:
        items.append((operation.replace("Item", ""), params["TableName"], params))
    writes = []
    for kind, table, request in items:
        key = request.get("Key") or _key_of(table, request.get("Item", {}))
        write = _Write(
            table,
            key,
            _stored(table, key),
            new_item=request.get("Item") if kind == "Put" else None,
            delete=kind == "Delete",
        )
        if kind == "ConditionCheck":
            write.delete = False
            write.new_item = write.before  # a condition check reads like a write and changes nothing
        writes.append(write)
    return writes


def _charge_write(
    ledger: Ledger,
    caller: str,
    operation: str,
    write: _Write,
    after: dict[str, Any] | None,
    transaction: bool,
    failed: bool,
) -> None:
    size = max(item_size(write.before), item_size(after), 1)
    units = math.ceil(size / 1024) * (2 if transaction else 1)
    ledger.wru[caller] += units
    ledger.items_written[caller] += 1
    if failed:
        return
    ledger.item_sizes[operation].append(item_size(after))
    table_keys = set(_key_of(write.table, write.key))
    for index in _indexes(write.table):
        gsi = _gsi_writes(index, table_keys, write.before, after) * (2 if transaction else 1)
        ledger.wru[caller] += gsi
        ledger.gsi_wru[caller] += gsi


def _charge_read(ledger: Ledger, caller: str, operation: str, parsed: dict[str, Any], context: dict[str, Any]) -> None:
    consistent = bool(context.get("bench_consistent"))
    if operation == "GetItem":
        sizes = [item_size(parsed.get("Item"))]
    elif operation in ("Query", "Scan"):
        sizes = [sum(item_size(i) for i in parsed.get("Items", []))]
    elif operation == "BatchGetItem":
        sizes = [item_size(i) for items in parsed.get("Responses", {}).values() for i in items]
    else:  # TransactGetItems
        sizes = [item_size(r.get("Item")) for r in parsed.get("Responses", [])]
    factor = 2 if operation == "TransactGetItems" else (1 if consistent else 0.5)
    for size in sizes:
        ledger.rru[caller] += max(1, math.ceil(size / 4096)) * factor
    ledger.items_read[caller] += len(parsed.get("Items", [])) if operation in ("Query", "Scan") else len(sizes)


def _backend() -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]


def _key_of(table: str, item: dict[str, Any]) -> dict[str, Any]:
    found = _backend().get_table(table)
    names = [found.hash_key_attr] + ([found.range_key_attr] if found.range_key_attr else [])
    return {name: item[name] for name in names if name in item}


def _stored(table: str, key: dict[str, Any]) -> dict[str, Any] | None:
    try:
        item = _backend().get_item(table, key)
    except Exception:  # noqa: BLE001 - a malformed key fails the real call too; nothing to charge beyond 1 unit
        return None
    return item.to_json()["Attributes"] if item is not None else None


def _indexes(table: str) -> list[Any]:
    return list(_backend().get_table(table).global_indexes)


def _gsi_writes(index: Any, table_keys: set[str], before: dict[str, Any] | None, after: dict[str, Any] | None) -> int:
    """WRU the change costs in one GSI: entry added, removed, or re-keyed (delete + put)."""
    keys = [k["AttributeName"] for k in index.schema]
    old = tuple(before.get(k) and str(before[k]) for k in keys) if before else None
    new = tuple(after.get(k) and str(after[k]) for k in keys) if after else None
    was = old is not None and all(old)
    now = new is not None and all(new)
    projection = (index.projection or {}).get("ProjectionType", "ALL")

    def projected(item: dict[str, Any] | None) -> int:
        if item is None:
            return 0
        if projection == "KEYS_ONLY":
            return item_size({k: v for k, v in item.items() if k in keys or k in table_keys})
        return item_size(item)

    if was and now and old == new:
        return 0 if projection == "KEYS_ONLY" or before == after else math.ceil(max(projected(after), 1) / 1024)
    units = 0
    if was:
        units += math.ceil(max(projected(before), 1) / 1024)
    if now:
        units += math.ceil(max(projected(after), 1) / 1024)
    return units


def item_size(item: dict[str, Any] | None) -> int:
    """DynamoDB's item size of an item in DynamoDB JSON (0 for no item)."""
    if not item:
        return 0
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        digits = len(data.lstrip("-").replace(".", "").lstrip("0")) or 1
        return math.ceil(digits / 2) + 1
    if kind == "B":
        return len(data) if isinstance(data, bytes) else len(data) * 3 // 4
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: v}) for v in data)
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in data)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(v) for k, v in data.items())
    return 0
