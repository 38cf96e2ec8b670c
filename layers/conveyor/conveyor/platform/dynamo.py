"""PynamoDB plumbing shared by every capability's repository, so each idiom exists once.

- `bind`: a model points at the table name the template gives it (from settings, never hard-coded).
- `TenantItem`: the (tenant_id, sk) key of a capability's single-table items; `get_or_none` reads one.
- `conditional` (`save_if`, `update_if`): a write whose condition failed answers False; every other error is
  raised.
- `DueIndex` + `shard_for` + `across_shards`: a sparse index sharded over SHARDS partitions (an item carries
  its shard and due time only while it waits), read shard by shard so no partition ever gets hot.
- `expires_at` / `is_expired`: TTL arithmetic (DynamoDB deletes up to ~48 h late, so reads check expiry).
- `encode_cursor` / `decode_cursor`: the one opaque page cursor; anything else is `InvalidCursor`.
- `filtered_page`: one page of a filtered listing, bounded in items read whatever the filter matches.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from pynamodb.attributes import JSONAttribute, ListAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model
from pynamodb.pagination import ResultIterator

from conveyor.platform.errors import InvalidCursor

M = TypeVar("M", bound=Model)
T = TypeVar("T")

MAX_EXAMINED = 1_000  # items one listing request reads at most (~80 RCU), whatever its filters match
# What a filtered listing's `next_cursor` means, for the API document.
NEXT_CURSOR_DOC = (
    "Pass as `cursor` to get the next page; absent on the last. A filtered page can hold fewer than `limit` "
    f"items, even none, while this is set: one request reads at most {MAX_EXAMINED:,} items, whatever matches."
)
SHARDS = 8  # sparse indexes are spread over a few partitions so large schedules never make one hot
_CONDITION_FAILED = "ConditionalCheckFailedException"


def bind(model: type[M], table_name: str) -> type[M]:
    """Point a model at its table (names come from settings, never hard-coded); cheap after the first call."""
    if model.Meta.table_name != table_name:
        model.Meta.table_name = table_name
        model._connection = None  # PynamoDB caches the connection with the old name
    return model


def string_list(**options: Any) -> ListAttribute[str]:
    """A list of strings (a DynamoDB L of S). PynamoDB's stubs type `ListAttribute(of=UnicodeAttribute)` as a list
    of UnicodeAttribute objects (pynamodb/PynamoDB#1246); what it holds, and what reads return, is `list[str]`."""
    return cast("ListAttribute[str]", ListAttribute(of=UnicodeAttribute, **options))


def bind_to(model: type[M], table_name: str | None, variable: str) -> type[M]:
    """`bind`, for a table only some functions are given: a function without it fails naming the variable."""
    if not table_name:
        from conveyor.platform.settings import SettingsError

        raise SettingsError(f"invalid environment: {variable} is not set (template.yaml gives it)")
    return bind(model, table_name)


class TenantItem(Model):
    """An item of a single-table capability (reminders, notify, webhooks): partition by tenant, `sk` names the
    item (`<kind>#<id>...`). Subclasses declare their own `Meta` (bound from settings) and attributes."""

    class Meta:
        table_name = None

    tenant_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


def get_or_none(model: type[M], tenant_id: str, sk: str, *, consistent: bool = False) -> M | None:
    """One item by its key, or None when there is none."""
    try:
        return model.get(tenant_id, sk, consistent_read=consistent)
    except DoesNotExist:
        return None


def save_if(item: Model, condition: Any) -> bool:
    """Put `item` if `condition` holds (False when it did not)."""
    return conditional(lambda: item.save(condition=condition))


def update_if(item: Model, actions: list[Any], condition: Any = None) -> bool:
    """Apply update `actions` to `item` if `condition` holds (False when it did not)."""
    return conditional(lambda: item.update(actions=actions, condition=condition))


def conditional(write: Callable[[], object]) -> bool:
    """Run one conditional write (save, update, delete or a transaction): False when a condition did not hold."""
    try:
        write()
    except (PutError, UpdateError, DeleteError) as exc:
        if getattr(exc, "cause_response_code", None) == _CONDITION_FAILED:
            return False
        raise
    except TransactWriteError as exc:
        if "ConditionalCheckFailed" in [r.code for r in (exc.cancellation_reasons or []) if r]:
            return False
        raise
    return True


# --- sharded sparse indexes ------------------------------------------------------------------------------
class DueIndex(GlobalSecondaryIndex):
    """`due-index` (due_shard, due_at), KEYS_ONLY: only items waiting for a time carry these attributes."""

    class Meta:
        index_name = "due-index"
        projection = KeysOnlyProjection()

    due_shard = UnicodeAttribute(hash_key=True)
    due_at = NumberAttribute(range_key=True)


def shard_for(key: str) -> str:
    """The shard of a sparse index an item with this key lives in (stable: crc32, not Python's hash)."""
    return str(zlib.crc32(key.encode()) % SHARDS)


def across_shards(query: Callable[[str], Iterable[T]]) -> Iterator[T]:
    """Fan one index query out over every shard, in shard order."""
    for shard in range(SHARDS):
        yield from query(str(shard))


def due(index: Any, now: datetime) -> Iterator[Any]:
    """Every item of a `DueIndex` due by `now`, across all shards."""
    return across_shards(lambda shard: index.query(shard, DueIndex.due_at <= int(now.timestamp())))


# --- TTL -------------------------------------------------------------------------------------------------
def expires_at(now: datetime, keep: timedelta) -> int:
    """The TTL attribute's value for an item kept `keep` from `now` (epoch seconds)."""
    return int((now + keep).timestamp())


def is_expired(expires: int | float | None, now: datetime) -> bool:
    """TTL deletes late: an item whose expiry has passed is treated as gone."""
    return expires is not None and expires <= now.timestamp()


# --- paging ----------------------------------------------------------------------------------------------
def start_key(tenant_id: str, sk: str, **extra: dict[str, str]) -> dict[str, Any]:
    """A query's ExclusiveStartKey for a (tenant_id, sk) table, plus index key attributes if any."""
    return {"tenant_id": {"S": tenant_id}, "sk": {"S": sk}, **extra}


def filtered_page(results: ResultIterator[M], model: type[M], *, limit: int) -> tuple[list[M], dict[str, Any] | None]:
    """Up to `limit` items of a filtered query (give it a `page_size`, not a `limit`), and the key to go on from
    (None: nothing more). At most MAX_EXAMINED items are read (DynamoDB's Limit counts items before the filter):
    a filter that matches few of a large partition's items costs a bounded request, not a timeout, and its page
    comes back short, even empty, with a key to continue (DynamoDB's own Query contract)."""
    pages = results.page_iter
    page_size = pages.page_size or MAX_EXAMINED
    items: list[M] = []
    while True:
        pages.page_size = min(page_size, MAX_EXAMINED - pages.total_scanned_count)
        raw_items = next(pages).get("Items", [])
        for index, raw in enumerate(raw_items):
            items.append(model.from_raw_data(raw))
            if len(items) == limit and index < len(raw_items) - 1:
                return items, {name: raw[name] for name in pages.key_names}  # resume after the last one kept
        if len(items) == limit or pages.last_evaluated_key is None or pages.total_scanned_count >= MAX_EXAMINED:
            return items, pages.last_evaluated_key
        # Size the next read by how well the filter matched so far: a sparse one reads the rest of the budget in
        # one request instead of page after page (the first line of the loop caps it at the budget).
        read_per_match = pages.total_scanned_count / len(items) if items else MAX_EXAMINED
        page_size = max(page_size, math.ceil((limit - len(items)) * read_per_match))


def encode_cursor(**fields: str) -> str:
    """An opaque page cursor holding the last key seen. The tenant always comes from the caller, never here."""
    packed = json.dumps(fields, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(packed.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, prefixes: Mapping[str, str]) -> dict[str, str] | None:
    """The fields of a cursor made by `encode_cursor`: exactly the keys of `prefixes`, each value starting with
    its prefix. None for no cursor; `InvalidCursor` for anything else (garbage, non-ASCII, another list's)."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor.encode("ascii") + b"=" * (-len(cursor) % 4))
        fields = json.loads(raw)
    except (binascii.Error, ValueError):  # UnicodeError and JSONDecodeError are ValueErrors
        raise InvalidCursor("invalid cursor") from None
    if (
        not isinstance(fields, dict)
        or set(fields) != set(prefixes)
        or not all(isinstance(fields[k], str) and fields[k].startswith(p) for k, p in prefixes.items())
    ):
        raise InvalidCursor("invalid cursor")
    return fields


class CompactJSONAttribute(JSONAttribute):
    """JSON stored as sent: UTF-8, no ASCII escapes, no spaces. PynamoDB's JSONAttribute escapes every non-ASCII
    character (é -> \\u00e9, an emoji -> two of them), so stored bytes could be 3-6x the bytes received and pass
    DynamoDB's 400 KB item limit. Reads are unchanged (any JSON decodes), so items written either way load."""

    def serialize(self, value: Any) -> str | None:
        if value is None:
            return None
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def stored_size(value: Any) -> int:
    """The bytes `value` takes in a CompactJSONAttribute (DynamoDB counts UTF-8 bytes)."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()) if value is not None else 0
