"""The shared get-or-set cache over the template's CacheTable (moto), and the queue overview that uses it."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest

from conveyor.platform import cache as cache_module
from conveyor.platform.aws import client


class Clock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def table(stack: Any) -> str:
    return stack.template.physical["CacheTable"]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_cache(table: str, clock: Clock):
    def make(**kw: Any) -> cache_module.Cache:
        # rng 0.999...: XFetch never refreshes early unless a test asks for it
        return cache_module.Cache(table, clock=clock, rng=kw.pop("rng", _NeverEarly()), **kw)

    return make


class _NeverEarly(random.Random):
    def random(self) -> float:
        return 1.0 - 1e-12


class Counting:
    """A compute function that counts its calls and takes a while, like a fan-out of SQS calls."""

    def __init__(self, value: Any = "v1", seconds: float = 0.0) -> None:
        self.value, self.seconds, self.calls = value, seconds, 0
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        with self._lock:
            self.calls += 1
        if self.seconds:
            time.sleep(self.seconds)
        return self.value


def test_fifty_concurrent_callers_of_a_missing_key_compute_it_once_and_all_get_the_value(
    table: str, atomic_dynamodb: None
) -> None:
    # Given a key nobody has computed, and 50 callers arriving together (each its own container's cache object)
    compute = Counting(value={"depth": 7}, seconds=0.3)
    start = threading.Barrier(50)
    results: list[Any] = []

    def call() -> None:
        caller = cache_module.Cache(table)
        start.wait(timeout=10)
        results.append(caller.get_or_set("tenant-a", "overview", compute, ttl=30)[0])

    threads = [threading.Thread(target=call) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # Then it was computed once, and every caller got the value
    assert compute.calls == 1
    assert results == [{"depth": 7}] * 50


def test_a_fresh_value_is_served_from_the_cache_with_its_remaining_ttl(make_cache, clock: Clock) -> None:
    cache = make_cache()
    compute = Counting()
    value, first = cache.get_or_set("tenant-a", "k", compute, ttl=30)
    clock.advance(10)
    again, second = make_cache().get_or_set("tenant-a", "k", compute, ttl=30)  # another container: from DynamoDB

    assert (value, again, compute.calls) == ("v1", "v1", 1)
    assert first.headers() == {"Cache-Status": "conveyor; fwd=miss; stored", "X-Cache": "MISS"}
    assert second.headers() == {"Cache-Status": "conveyor; hit; ttl=20", "X-Cache": "HIT"}


def test_a_value_slow_to_compute_stays_fresh_for_ten_times_its_compute_time(make_cache, clock: Clock) -> None:
    # Given a value with a 2 s ttl whose computing took 3 s (a count over a large partition of a busy table)
    def slow() -> str:
        clock.advance(3)
        return "counted"

    make_cache().get_or_set("tenant-a", "k", slow, ttl=2)
    compute = Counting("recounted")

    # When other callers ask 29 s after it was computed, then 31 s after
    clock.advance(29)
    early, early_status = make_cache().get_or_set("tenant-a", "k", compute, ttl=2)
    clock.advance(2)
    late, _ = make_cache().get_or_set("tenant-a", "k", compute, ttl=2)

    # Then the first is served from the cache (no value is recomputed more than a tenth of the time), the second
    # recomputes it
    assert (early, early_status.outcome) == ("counted", "hit")
    assert (late, compute.calls) == ("recounted", 1)


def test_a_stale_value_is_served_while_one_caller_refreshes_it(make_cache, clock: Clock, table: str) -> None:
    # Given a value past fresh_until but before stale_until, and one caller already refreshing it (holding the lock)
    make_cache().get_or_set("tenant-a", "k", Counting("old"), ttl=10, stale_ttl=60)
    clock.advance(15)
    refreshing = make_cache()
    assert refreshing._lock("entry#tenant-a#k", "someone-else", seen=clock.now)

    # When another caller asks
    compute = Counting("new")
    value, status = make_cache().get_or_set("tenant-a", "k", compute, ttl=10, stale_ttl=60)

    # Then it gets the stale value at once and does not compute
    assert (value, compute.calls, status.headers()["X-Cache"]) == ("old", 0, "STALE")
    assert status.headers()["Cache-Status"] == "conveyor; fwd=stale"


def test_a_stale_value_is_refreshed_by_the_caller_that_wins_the_lock(make_cache, clock: Clock) -> None:
    make_cache().get_or_set("tenant-a", "k", Counting("old"), ttl=10, stale_ttl=60)
    clock.advance(15)

    value, status = make_cache().get_or_set("tenant-a", "k", Counting("new"), ttl=10, stale_ttl=60)

    assert value == "new"
    assert status.headers() == {"Cache-Status": "conveyor; fwd=stale; stored", "X-Cache": "MISS"}


def test_a_value_past_stale_until_is_never_served_even_before_dynamodb_deletes_it(
    make_cache, clock: Clock, table: str
) -> None:
    # Given a value past stale_until, still in the table (DynamoDB's TTL deletes late; moto's never does)
    make_cache().get_or_set("tenant-a", "k", Counting("old"), ttl=10, stale_ttl=20)
    clock.advance(31)
    assert client("dynamodb").get_item(TableName=table, Key={"key": {"S": "entry#tenant-a#k"}}).get("Item")
    # ...and someone else holding the lock, so this caller cannot refresh it either
    assert make_cache()._lock("entry#tenant-a#k", "someone-else", seen=clock.now)

    compute = Counting("new")
    value, _ = make_cache(sleep=lambda s: clock.advance(s)).get_or_set("tenant-a", "k", compute, ttl=10)

    # Then the old value is not served: the caller waited, then computed it itself
    assert (value, compute.calls) == ("new", 1)


def test_bumping_a_tag_invalidates_its_entries_and_only_those(make_cache) -> None:
    cache = make_cache()
    cache.get_or_set("platform", "queues", Counting("q1"), ttl=60, tags=["queues"])
    cache.get_or_set("platform", "other", Counting("o1"), ttl=60, tags=["other"])

    cache.bump("platform", "queues")

    elsewhere = make_cache()
    assert elsewhere.get_or_set("platform", "queues", Counting("q2"), ttl=60, tags=["queues"])[0] == "q2"
    assert elsewhere.get_or_set("platform", "other", Counting("o2"), ttl=60, tags=["other"])[0] == "o1"


def test_one_tenants_value_is_never_served_to_another(make_cache) -> None:
    cache = make_cache()
    cache.get_or_set("tenant-a", "counts", Counting({"jobs": 3}), ttl=60)

    value, status = cache.get_or_set("tenant-b", "counts", Counting({"jobs": 0}), ttl=60)

    assert value == {"jobs": 0}
    assert status.outcome == "miss"


def test_a_failing_compute_is_remembered_for_seconds_not_retried_by_every_caller(make_cache, clock: Clock) -> None:
    def failing() -> Any:
        raise ConnectionError("SQS did not answer")

    with pytest.raises(ConnectionError):
        make_cache().get_or_set("platform", "k", failing, ttl=60)
    compute = Counting("ok")

    # Within ERROR_SECONDS every caller gets the failure without computing...
    with pytest.raises(cache_module.RecentFailure):
        make_cache().get_or_set("platform", "k", compute, ttl=60)
    assert compute.calls == 0
    # ...after it, the next caller computes again
    clock.advance(cache_module.ERROR_SECONDS + 0.1)
    assert make_cache().get_or_set("platform", "k", compute, ttl=60)[0] == "ok"


def test_early_refresh_recomputes_a_value_nearing_expiry_before_it_goes_stale(make_cache, clock: Clock) -> None:
    # Given a value that took 2 s to compute, 1 s before it expires, and an unlucky draw (XFetch)
    slow = Counting("v1")
    first = make_cache()
    started = clock.now

    def compute_slowly() -> Any:
        clock.advance(2)
        return slow()

    first.get_or_set("platform", "k", compute_slowly, ttl=30)
    clock.now = started + 2 + 29
    unlucky = random.Random()
    unlucky.random = lambda: 0.1  # type: ignore[method-assign] # -2 * ln(0.1) = 4.6 s of head start

    value, status = make_cache(rng=unlucky).get_or_set("platform", "k", Counting("v2"), ttl=30)

    assert (value, status.outcome) == ("v2", "stale")


def test_a_cache_that_is_down_fails_open_and_computes_directly(make_cache, table: str) -> None:
    client("dynamodb").delete_table(TableName=table)
    compute = Counting("direct")

    value, status = make_cache().get_or_set("platform", "k", compute, ttl=60)

    assert (value, compute.calls) == ("direct", 1)
    assert status.headers() == {"Cache-Status": "conveyor; fwd=bypass; detail=cache-unavailable", "X-Cache": "MISS"}


# --- the queue overview -----------------------------------------------------------------------------------
def test_the_queue_overview_is_served_from_the_cache_on_the_second_request(api_as, aws_calls) -> None:
    admin = api_as("tenant-a", "admin")
    first = admin.get("/v1/queues")
    calls_after_first = len(aws_calls("sqs", "GetQueueAttributes"))
    second = admin.get("/v1/queues")

    assert first.status == second.status == 200
    assert first.headers["x-cache"] == "MISS" and second.headers["x-cache"] == "HIT"
    assert second.headers["cache-status"].startswith("conveyor; hit; ttl=")
    assert calls_after_first > 0
    assert len(aws_calls("sqs", "GetQueueAttributes")) == calls_after_first  # no SQS call for the second
    assert second.json() == first.json()


def test_a_paused_queue_shows_as_paused_on_the_next_overview(api_as, stack) -> None:
    operator = api_as("tenant-a", "admin,platform")
    before = {q["name"]: q["paused"] for q in operator.get("/v1/queues").json()["queues"]}
    assert before["email"] is False

    assert operator.post("/v1/queues/email/pause").status == 200

    after = {q["name"]: q["paused"] for q in operator.get("/v1/queues").json()["queues"]}
    assert after["email"] is True
