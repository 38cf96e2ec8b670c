"""A shared get-or-set cache for expensive aggregate reads, in DynamoDB, with a small per-container layer.

What it is for: reads that fan out to many requests (the queue overview's SQS calls, job counts over thousands of
items) polled every few seconds by many callers. Not for single-item reads: a DynamoDB read costs what the read it
would save costs.

- Entries are scoped (a tenant id, or "platform" for values that hold no tenant data), so one tenant can never
  read another's value. Values are zlib-compressed JSON.
- `fresh_until` / `stale_until` are checked on every read (DynamoDB's TTL deletes up to ~48 h late; the TTL
  attribute only keeps the table small).
- Stampede protection: a missing or stale entry is recomputed by one caller, the one whose conditional lock write
  wins. The others serve the stale value, or (nothing to serve) wait briefly for the winner's value. Entries are
  refreshed early with probability rising towards expiry (XFetch: Vattani, Chierichetti, Lowenstein, VLDB 2015).
- Tags: each entry records the version of each of its tags when it was computed; `bump(tag)` adds one to the
  tag's version, so every entry of that tag stops matching at once. An entry and its tags are read in one
  BatchGetItem.
- A value stays fresh for its ttl or for 1/BUSY_SHARE times what computing it took, whichever is longer: no
  value is recomputed more than a tenth of the time, however many callers poll it and however slow its source
  gets under load (job counts over thousands of items).
- Failures of `compute` are cached for ERROR_SECONDS only, so a failing dependency is not hammered by every caller.
- The cache never makes a read fail: if DynamoDB does not answer, the value is computed directly (fail open) and
  a warning is logged.
- The per-container layer keeps a tagged value for at most LOCAL_SECONDS (containers do not see each other's
  bumps until then) and an untagged one while it is fresh (its ttl: seconds, not minutes; nothing invalidates it
  early anyway).
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from conveyor.platform.aws import client
from conveyor.platform.errors import Unavailable
from conveyor.platform.observability import count_by, logger

LOCAL_SECONDS = 2.0
LOCAL_ENTRIES = 256
ERROR_SECONDS = 3.0
LOCK_SECONDS = 10.0  # longer than any compute we cache; a crashed computer's lock lapses after it
WAIT_SECONDS = 5.0  # how long a caller with nothing to serve waits for the lock holder's value (then computes)
XFETCH_BETA = 1.0
BUSY_SHARE = 0.1  # the most of a value's life spent recomputing it: fresh for at least 10x its compute time
PLATFORM = "platform"  # the scope of values that hold no tenant data (shared by every tenant)


class RecentFailure(Unavailable):
    """Computing this value failed moments ago; callers get the failure, not another attempt, for a few seconds."""

    code = "upstream_unavailable"


@dataclass(frozen=True)
class Status:
    """How a value was served, as RFC 9211 `Cache-Status` and the older `X-Cache` header say it."""

    outcome: str  # "hit" | "miss" | "stale" | "bypass"
    ttl: int | None = None  # seconds of freshness left (hits)
    stored: bool = False

    def headers(self) -> dict[str, str]:
        if self.outcome == "hit":
            status = f"conveyor; hit; ttl={self.ttl or 0}"
        elif self.outcome == "bypass":
            status = "conveyor; fwd=bypass; detail=cache-unavailable"
        else:
            status = f"conveyor; fwd={self.outcome}" + ("; stored" if self.stored else "")
        served_from_cache = {"hit": "HIT", "stale": "STALE"}.get(self.outcome) if not self.stored else None
        return {"Cache-Status": status, "X-Cache": served_from_cache or "MISS"}


def combined(*statuses: Status) -> Status:
    """One status for a response assembled from several cached parts: the least fresh part decides."""
    for outcome in ("bypass", "miss", "stale"):
        found = [s for s in statuses if s.outcome == outcome]
        if found:
            return Status(outcome, stored=any(s.stored for s in found))
    return Status("hit", ttl=min((s.ttl or 0) for s in statuses) if statuses else 0)


@dataclass(frozen=True)
class _Entry:
    value: Any
    fresh_until: float
    stale_until: float
    delta: float  # seconds the last compute took (XFetch)
    tags: dict[str, int]
    error: str | None = None
    lock_until: float = 0.0


class Cache:
    """One cache over one table. `clock` and `rng` are injectable so expiry and early refresh are testable."""

    def __init__(
        self,
        table: str,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table = table
        self.clock, self.rng, self.sleep = clock, rng or random.Random(), sleep  # noqa: S311 - not security
        self._local: OrderedDict[str, tuple[float, _Entry]] = OrderedDict()
        self._local_lock = threading.Lock()

    # --- the one entry point ----------------------------------------------------------------------------
    def get_or_set(
        self,
        scope: str,
        name: str,
        compute: Callable[[], Any],
        *,
        ttl: float,
        stale_ttl: float = 0.0,
        tags: Sequence[str] = (),
    ) -> tuple[Any, Status]:
        """The value of `name` in `scope`: cached if fresh, else computed by one caller and stored for `ttl`
        seconds (then served stale for `stale_ttl` more while one caller refreshes it)."""
        key = f"entry#{scope}#{name}"
        now = self.clock()
        local = self._local_get(key, now)
        if local is not None:
            return self._served(local, now)
        try:
            entry, versions, seen = self._read(key, scope, tags)
        except _Unavailable:
            return compute(), Status("bypass")
        if entry is not None and now < entry.fresh_until and not self._refresh_early(entry, now):
            self._local_put(key, entry, now)
            return self._served(entry, now)
        servable = entry if entry is not None and now < entry.stale_until else None
        return self._recompute(key, _Plan(scope, tags, versions, seen, compute, ttl, stale_ttl), servable)

    def bump(self, scope: str, tag: str) -> None:
        """Invalidate every entry of `tag` in `scope` (in this container at once, in others within LOCAL_SECONDS)."""
        with self._local_lock:
            self._local.clear()
        try:
            client("dynamodb").update_item(
                TableName=self.table,
                Key={"key": {"S": f"tag#{scope}#{tag}"}},
                UpdateExpression="ADD version :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
        except _AWS_ERRORS as exc:
            logger.warning("cache unavailable: could not bump a tag", extra={"tag": tag, "error": str(exc)})

    # --- reading ------------------------------------------------------------------------------------------
    def _read(self, key: str, scope: str, tags: Sequence[str]) -> tuple[_Entry | None, dict[str, int], float]:
        """The entry (None if absent or computed under other tag versions), the current versions of its tags and
        the stored item's fresh_until (0 if none), in one BatchGetItem (eventually consistent: a bump reaches
        readers within a second)."""
        tag_keys = {f"tag#{scope}#{tag}": tag for tag in tags}
        keys = [{"key": {"S": k}} for k in (key, *tag_keys)]
        try:
            found = client("dynamodb").batch_get_item(RequestItems={self.table: {"Keys": keys}})
        except _AWS_ERRORS as exc:
            logger.warning("cache unavailable: computing directly", extra={"key": key, "error": str(exc)})
            raise _Unavailable from exc
        items = {item["key"]["S"]: item for item in found.get("Responses", {}).get(self.table, [])}
        versions = {tag: int(items.get(k, {}).get("version", {}).get("N", "0")) for k, tag in tag_keys.items()}
        item = items.get(key)
        entry = _decode(item) if item and "fresh_until" in item else None
        seen = entry.fresh_until if entry is not None else 0.0
        return (entry if entry is not None and entry.tags == versions else None), versions, seen

    def _refresh_early(self, entry: _Entry, now: float) -> bool:
        """XFetch: refresh before expiry with a probability that grows as expiry nears and with compute cost."""
        if entry.error is not None or entry.delta <= 0:
            return False
        gap = -entry.delta * XFETCH_BETA * math.log(max(self.rng.random(), 1e-12))
        return now + gap >= entry.fresh_until

    def _served(self, entry: _Entry, now: float) -> tuple[Any, Status]:
        if entry.error is not None:
            raise RecentFailure(entry.error)
        _count("CacheHit")
        return entry.value, Status("hit", ttl=max(0, int(entry.fresh_until - now)))

    # --- recomputing --------------------------------------------------------------------------------------
    def _recompute(self, key: str, plan: _Plan, servable: _Entry | None) -> tuple[Any, Status]:
        try:
            locked = self._lock(key, uuid.uuid4().hex, plan.seen)
        except _Unavailable:
            return plan.compute(), Status("bypass")
        if not locked:
            if servable is not None and servable.error is None:
                _count("CacheStale")
                return servable.value, Status("stale")
            waited = self._wait_for(key, plan)
            if waited is not None:
                return self._served(waited, self.clock())
        return self._compute_and_store(key, plan, stale=servable is not None)

    def _compute_and_store(self, key: str, plan: _Plan, *, stale: bool) -> tuple[Any, Status]:
        started = self.clock()
        try:
            value = plan.compute()
        except Exception as exc:  # stored briefly so every caller does not retry a failing dependency, re-raised
            until = started + ERROR_SECONDS
            self._store(key, _Entry(None, until, until, 0.0, plan.versions, _reason(exc)))
            raise
        finished = self.clock()
        fresh_for = max(plan.ttl, (finished - started) / BUSY_SHARE)
        entry = _Entry(
            value, finished + fresh_for, finished + fresh_for + plan.stale_ttl, finished - started, plan.versions
        )
        stored = self._store(key, entry)
        if stored:
            self._local_put(key, entry, finished)
        _count("CacheStale" if stale else "CacheMiss")
        return value, Status("stale" if stale else "miss", stored=stored)

    def _lock(self, key: str, owner: str, seen: float = 0.0) -> bool:
        """The right to compute `key`: a conditional write that only one caller at a time wins, and only while
        nobody has stored a newer value than the one this caller saw (`seen`: its fresh_until, 0 if none)."""
        from botocore.exceptions import ClientError

        now = self.clock()
        try:
            client("dynamodb").update_item(
                TableName=self.table,
                Key={"key": {"S": key}},
                UpdateExpression=(
                    "SET lock_until = :until, lock_owner = :owner, expires_at = if_not_exists(expires_at, :ttl)"
                ),
                ConditionExpression=(
                    "(attribute_not_exists(lock_until) OR lock_until < :now)"
                    " AND (attribute_not_exists(fresh_until) OR fresh_until <= :seen)"
                ),
                ExpressionAttributeValues={
                    ":until": {"N": repr(now + LOCK_SECONDS)},
                    ":owner": {"S": owner},
                    ":now": {"N": repr(now)},
                    ":seen": {"N": repr(seen)},
                    ":ttl": {"N": str(int(now + LOCK_SECONDS + 3600))},
                },
            )
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            logger.warning("cache unavailable: computing directly", extra={"key": key, "error": str(exc)})
            raise _Unavailable from exc
        except _AWS_ERRORS as exc:
            logger.warning("cache unavailable: computing directly", extra={"key": key, "error": str(exc)})
            raise _Unavailable from exc

    def _wait_for(self, key: str, plan: _Plan) -> _Entry | None:
        """Poll briefly for the lock holder's value; None when it does not come in time (then we compute)."""
        deadline = self.clock() + WAIT_SECONDS
        pause = 0.05
        while self.clock() < deadline:
            self.sleep(pause)
            pause = min(pause * 2, 0.5)  # backing off: waiters must not crowd out the holder's write
            try:
                entry, _, _ = self._read(key, plan.scope, plan.tags)
            except _Unavailable:
                return None
            if entry is not None and self.clock() < entry.fresh_until:
                return entry
        return None

    def _store(self, key: str, entry: _Entry) -> bool:
        """Write the entry (releasing the lock: the put replaces the whole item). False if DynamoDB refused."""
        item: dict[str, Any] = {
            "key": {"S": key},
            "fresh_until": {"N": repr(entry.fresh_until)},
            "stale_until": {"N": repr(entry.stale_until)},
            "delta": {"N": repr(round(entry.delta, 4))},
            "tags": {"S": json.dumps(entry.tags, sort_keys=True)},
            "expires_at": {"N": str(int(entry.stale_until) + 60)},  # TTL only tidies; reads check stale_until
        }
        if entry.error is not None:
            item["error"] = {"S": entry.error}
        else:
            item["value"] = {"B": zlib.compress(json.dumps(entry.value, separators=(",", ":")).encode())}
        try:
            client("dynamodb").put_item(TableName=self.table, Item=item)
            return True
        except _AWS_ERRORS as exc:
            logger.warning("cache unavailable: value not stored", extra={"key": key, "error": str(exc)})
            return False

    # --- the per-container layer ----------------------------------------------------------------------------
    def _local_get(self, key: str, now: float) -> _Entry | None:
        with self._local_lock:
            found = self._local.get(key)
            if found is None:
                return None
            kept_until, entry = found
            if now >= kept_until or now >= entry.fresh_until:
                del self._local[key]
                return None
            self._local.move_to_end(key)
            return entry

    def _local_put(self, key: str, entry: _Entry, now: float) -> None:
        with self._local_lock:
            kept_until = min(now + LOCAL_SECONDS, entry.fresh_until) if entry.tags else entry.fresh_until
            self._local[key] = (kept_until, entry)
            self._local.move_to_end(key)
            while len(self._local) > LOCAL_ENTRIES:
                self._local.popitem(last=False)


@dataclass(frozen=True)
class _Plan:
    """What a recompute needs: where the value lives, the tag versions it is computed under, how long it keeps."""

    scope: str
    tags: Sequence[str]
    versions: dict[str, int]
    seen: float  # the stored fresh_until this caller saw (0 if none): its lock fails if a newer value landed
    compute: Callable[[], Any]
    ttl: float
    stale_ttl: float


class _Unavailable(Exception):
    """DynamoDB did not answer: the caller computes directly."""


def _aws_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


_AWS_ERRORS = _aws_errors()


def _decode(item: dict[str, Any]) -> _Entry:
    error = item.get("error", {}).get("S")
    value = None if error is not None else json.loads(zlib.decompress(item["value"]["B"]))
    return _Entry(
        value=value,
        fresh_until=float(item["fresh_until"]["N"]),
        stale_until=float(item["stale_until"]["N"]),
        delta=float(item.get("delta", {}).get("N", "0")),
        tags={k: int(v) for k, v in json.loads(item.get("tags", {}).get("S", "{}")).items()},
        error=error,
    )


def _reason(exc: Exception) -> str:
    return f"a dependency failed moments ago ({type(exc).__name__}); try again in a few seconds"


def _count(name: str) -> None:
    """Hit / miss / stale counts (the cache's own statistics in CloudWatch)."""
    count_by(name, ("cache", "shared"))


_shared: Cache | None = None
_shared_guard = threading.Lock()


def shared() -> Cache:
    """The process's cache over the template's CacheTable (CACHE_TABLE), made on first use."""
    global _shared
    from conveyor.platform.settings import SettingsError, get_settings

    table = get_settings().cache_table
    if not table:
        raise SettingsError("CACHE_TABLE is not set: this function's environment in template.yaml must give it")
    with _shared_guard:
        if _shared is None or _shared.table != table:
            _shared = Cache(table)
        return _shared


def reset() -> None:
    """Forget the process's cache (its per-container layer with it): for a new world in tests."""
    global _shared
    with _shared_guard:
        _shared = None
