"""The embedded emulator (what `make run` serves AWS from) tells the stream pollers when a table was written, so they
read at once after a write instead of on a timer, and reads do not wake them."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest


@pytest.fixture
def emulator() -> Iterator[Any]:
    from conveyor_local.emulator import Emulator

    server = Emulator("127.0.0.1", 0)
    server.start()
    assert not server.errors
    yield server
    server.stop()


def dynamodb(server: Any) -> tuple[Any, str]:
    """A client of the emulator and a new table with a stream (moto's state outlives one server)."""
    host, port = server.get_host_and_port()
    table = f"t-{uuid.uuid4().hex}"
    client = boto3.client("dynamodb", endpoint_url=f"http://{host}:{port}", region_name="us-east-1")
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    return client, table


def test_every_kind_of_table_write_is_counted_and_reads_are_not(emulator: Any) -> None:
    client, t = dynamodb(emulator)
    before = emulator.writes.count
    client.put_item(TableName=t, Item={"pk": {"S": "a"}})
    client.update_item(
        TableName=t,
        Key={"pk": {"S": "a"}},
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": {"N": "1"}},
    )
    client.batch_write_item(RequestItems={t: [{"PutRequest": {"Item": {"pk": {"S": "b"}}}}]})
    client.transact_write_items(TransactItems=[{"Put": {"TableName": t, "Item": {"pk": {"S": "c"}}}}])
    client.delete_item(TableName=t, Key={"pk": {"S": "a"}})
    assert emulator.writes.count == before + 5

    client.get_item(TableName=t, Key={"pk": {"S": "b"}})
    client.scan(TableName=t)
    assert emulator.writes.count == before + 5


def test_a_waiting_poller_wakes_on_a_write_made_by_another_thread_and_not_before(emulator: Any) -> None:
    # Given a poller waiting (with a long timeout) for a write after the count it last saw
    client, t = dynamodb(emulator)
    seen = emulator.writes.count
    woke = threading.Event()
    counts: list[int] = []

    def poller() -> None:
        counts.append(emulator.writes.wait(seen, timeout=60))
        woke.set()

    thread = threading.Thread(target=poller)
    thread.start()
    # When only reads happen, it keeps waiting
    client.get_item(TableName=t, Key={"pk": {"S": "x"}})
    assert not woke.wait(0.5)
    # When another thread writes, it wakes with the new count, long before its timeout
    client.put_item(TableName=t, Item={"pk": {"S": "x"}})
    assert woke.wait(10)
    thread.join()
    assert counts == [seen + 1]


def test_a_write_made_between_a_read_and_the_wait_is_not_missed(emulator: Any) -> None:
    client, t = dynamodb(emulator)
    seen = emulator.writes.count  # what the poller saw before its read
    client.put_item(TableName=t, Item={"pk": {"S": "y"}})  # a write while it was reading
    counts: list[int] = []
    waiter = threading.Thread(target=lambda: counts.append(emulator.writes.wait(seen, timeout=60)))
    waiter.start()
    waiter.join(10)
    assert not waiter.is_alive()  # answered at once, not after its 60 s
    assert counts == [seen + 1]


def test_transactions_beside_other_threads_writes_never_fail_as_moto_alone_does(emulator: Any) -> None:
    # Given a table with some items, and threads that write it while others run transactions on it (a transaction
    # in moto deep-copies the table; alone it fails when another thread adds an item meanwhile)
    client, t = dynamodb(emulator)
    for i in range(300):
        client.put_item(TableName=t, Item={"pk": {"S": f"seed-{i}"}, "pad": {"S": "x" * 200}})
    errors: list[BaseException] = []

    def transactions(n: int) -> None:
        for i in range(25):
            try:
                client.transact_write_items(
                    TransactItems=[{"Put": {"TableName": t, "Item": {"pk": {"S": f"tx-{n}-{i}"}}}}]
                )
            except Exception as exc:  # noqa: BLE001 - collected, asserted below
                errors.append(exc)

    def writes(n: int) -> None:
        for i in range(100):
            try:
                client.put_item(TableName=t, Item={"pk": {"S": f"put-{n}-{i}"}})
            except Exception as exc:  # noqa: BLE001 - collected, asserted below
                errors.append(exc)

    threads = [threading.Thread(target=transactions, args=(n,)) for n in range(3)]
    threads += [threading.Thread(target=writes, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then every request succeeded, and every item is there
    assert errors == []
    assert client.scan(TableName=t, Select="COUNT")["Count"] == 300 + 3 * 25 + 3 * 100


def test_a_cancelled_transaction_leaves_the_stream_whole(emulator: Any) -> None:
    # Given a stream poller's shard iterator (as the dispatcher's mapping holds one)
    client, t = dynamodb(emulator)
    host, port = emulator.get_host_and_port()
    streams = boto3.client("dynamodbstreams", endpoint_url=f"http://{host}:{port}", region_name="us-east-1")
    arn = client.describe_table(TableName=t)["Table"]["LatestStreamArn"]
    (shard,) = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
    client.put_item(TableName=t, Item={"pk": {"S": "a"}})

    # When a transaction is cancelled by its condition after its first action applied (two requests racing on
    # one idempotency claim), and a write follows
    with pytest.raises(client.exceptions.TransactionCanceledException):
        client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": t, "Item": {"pk": {"S": "b"}}}},
                {
                    "Put": {
                        "TableName": t,
                        "Item": {"pk": {"S": "a"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    client.put_item(TableName=t, Item={"pk": {"S": "c"}})

    # Then the poller reads every write that happened, and nothing of the cancelled transaction
    records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in records] == ["a", "c"]
    assert "Item" not in client.get_item(TableName=t, Key={"pk": {"S": "b"}})


def test_a_port_in_use_is_reported_at_start_and_nothing_is_left_running() -> None:
    import socket

    from conveyor_local.emulator import Emulator

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = Emulator("127.0.0.1", taken.getsockname()[1])
        server.start()
        assert [str(e) for e in server.errors] == [
            f"cannot listen on 127.0.0.1:{taken.getsockname()[1]}: the address is in use"
        ]
        server.stop()
        assert not server._process.is_alive()  # noqa: SLF001 - the emulator's own process is gone
