"""Identifiers: time-ordered (ULID layout) so a tenant's jobs sort newest-first by key, no index needed."""

from __future__ import annotations

import hashlib
import secrets
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(now_ms: int | None = None) -> str:
    """26 chars: 48-bit millisecond timestamp + 80 random bits, Crockford base32, lexicographically sortable."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def derived_ulid(seed: str, ms: int) -> str:
    """A ULID that is the same every time for the same `seed` and millisecond: what a caller that must create
    something once (the job of one reminder's firing) uses as its key, so a repeat finds it instead of a second."""
    value = (max(0, ms) << 80) | int.from_bytes(hashlib.sha256(seed.encode()).digest()[:10], "big")
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def ulid_floor(ms: int) -> str:
    """The smallest ULID of millisecond `ms`: a key-range bound for "created at or after" queries."""
    value = max(0, ms) << 80
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def new_id(prefix: str) -> str:
    return f"{prefix}_{ulid()}"


def ulid_ms(value: str) -> int:
    """The millisecond timestamp a ULID (or a "<prefix>_<ULID>" id) was made at; ValueError if it is not one."""
    body = value.rsplit("_", 1)[-1]
    if len(body) != 26:
        raise ValueError(f"not a ULID: {value!r}")
    ms = 0
    for char in body[:10]:
        ms = ms * 32 + _CROCKFORD.index(char)
    return ms
