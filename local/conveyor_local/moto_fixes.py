"""What the local stack changes in moto's own behaviour (moto is pinned in pyproject.toml; each fix says why).

- TransactWriteItems keeps a rollback copy of the tables it writes, but moto 5.2.5 deep-copies a table once per
  *action* (`original_table_state[name] = copy.deepcopy(table)` in a loop over the items), and a table's copy
  includes every stream record it ever wrote. A 100-action transaction on a table holding a few thousand jobs
  took longer than ApiFunction's 10 s timeout (`make bench`'s keyed batch enqueue), and every process batch's
  ledger transaction grew slower as the stack ran. Here each table is copied once per transaction: the copies
  moto made were identical (all are taken before the first action applies), so the rollback is unchanged.
- A cancelled TransactWriteItems rolls back by putting the copy in the table's place, with a stream shard of its
  own: every shard iterator the stream pollers hold still reads the old shard, which never gets another record.
  The stack's dispatcher then never saw the jobs written after the first cancelled transaction (the jobs table's
  idempotency claims cancel one whenever two requests race; `make bench`'s webhook part lost a third of its
  deliveries that way). Here the table object stays and takes the copy's state, and its own shard takes the
  copy's records (those from before the transaction: a cancelled one writes none, as on DynamoDB).
- A queue's depth (its visible, in-flight and delayed messages) is counted by reading the clock once per message
  and per count, and moto counts it for every message sent (`queue.attributes` builds every attribute to look
  up ContentBasedDeduplication) and every receive. With 2,000 messages queued that was 60% of the stack's CPU
  under a burst (py-spy, `make bench ARGS=throughput`). Here each count reads the clock once: same answers
  (a message is visible once the clock is past `visible_at`, delayed while it is before `delayed_until`).
- An event source mapping makes moto deliver by itself when a message is sent or a stream record written: it would
  run the function's stub through Docker and consume what the stack's pollers must deliver. Here a mapping is
  kept (the Lambda API lists it and pause/resume set its State, which the pollers obey) but never attached to its
  queue or table: the pollers are the only delivery, in whichever process moto runs.
"""

from __future__ import annotations

import copy
import functools
import threading
from typing import Any

import moto.dynamodb.models as dynamodb_models
from moto.awslambda.models import LambdaBackend
from moto.core.utils import unix_time_millis
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.dynamodb.models.table import Table
from moto.sqs.models import Queue, sqs_backends

_transaction = threading.local()  # the copies made by the transaction running on this thread


class _CopyEachTableOnce:
    """Stands in for the `copy` module inside moto.dynamodb.models: within a transaction, a table copied before
    is not copied again."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        copies = getattr(_transaction, "copies", None)
        if copies is None or not isinstance(value, Table):
            return copy.deepcopy(value, memo)
        if id(value) not in copies:
            copies[id(value)] = copy.deepcopy(value, memo)
        return copies[id(value)]


def _visible_now(queue: Queue) -> list[Any]:
    now = unix_time_millis()
    return [m for m in queue._messages if now > m.visible_at and not now < m.delayed_until]


def _in_flight(queue: Queue) -> int:
    now = unix_time_millis()
    return sum(1 for m in queue._messages if not now > m.visible_at)


def _delayed(queue: Queue) -> int:
    now = unix_time_millis()
    return sum(1 for m in queue._messages if now < m.delayed_until)


def _roll_back(table: Table, saved: Table) -> None:
    """`table` as `saved` (its copy from before the transaction), keeping the objects others hold: the table and
    its stream shard (the pollers' shard iterators read that shard)."""
    shard = table.stream_shard
    table.__dict__.update(saved.__dict__)
    if shard is not None and saved.stream_shard is not None:
        shard.items = saved.stream_shard.items
        table.stream_shard = shard


def install() -> None:
    """Idempotent: the fixes are applied once per process."""
    if getattr(DynamoDBBackend.transact_write_items, "_copies_each_table_once", False):
        return
    Queue.messages = property(_visible_now)  # type: ignore[assignment,method-assign]
    Queue.approximate_number_of_messages = property(lambda queue: len(_visible_now(queue)))  # type: ignore[assignment,method-assign]
    Queue.approximate_number_of_messages_not_visible = property(_in_flight)  # type: ignore[assignment,method-assign]
    Queue.approximate_number_of_messages_delayed = property(_delayed)  # type: ignore[assignment,method-assign]
    original = DynamoDBBackend.transact_write_items

    @functools.wraps(original)
    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        tables = dict(self.tables)
        _transaction.copies = {}
        try:
            return original(self, transact_items)
        finally:
            _transaction.copies = None
            for name, table in tables.items():
                copy_in_its_place = self.tables.get(name)
                if copy_in_its_place is not None and copy_in_its_place is not table:  # rolled back
                    _roll_back(table, copy_in_its_place)
                    self.tables[name] = table

    transact_write_items._copies_each_table_once = True  # type: ignore[attr-defined]
    dynamodb_models.copy = _CopyEachTableOnce()  # type: ignore[assignment]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    create_mapping = LambdaBackend.create_event_source_mapping

    @functools.wraps(create_mapping)
    def create_event_source_mapping(self: LambdaBackend, spec: dict[str, Any]) -> Any:
        mapping = create_mapping(self, spec)
        for queue in sqs_backends[self.account_id][self.region_name].queues.values():
            queue.lambda_event_source_mappings.pop(mapping.function_arn, None)
        for table in dynamodb_backends[self.account_id][self.region_name].tables.values():
            table.lambda_event_source_mappings.pop(mapping.function_arn, None)
        return mapping

    LambdaBackend.create_event_source_mapping = create_event_source_mapping  # type: ignore[method-assign]
