"""How cached answers are labelled (RFC 9211 Cache-Status, X-Cache) and how validators compare (RFC 9110)."""

from __future__ import annotations

import pytest

from conveyor.platform.cache import Status, combined
from conveyor.platform.http.conditional import etag, matches


@pytest.mark.parametrize(
    ("status", "cache_status", "x_cache"),
    [
        (Status("hit", ttl=12), "conveyor; hit; ttl=12", "HIT"),
        (Status("miss", stored=True), "conveyor; fwd=miss; stored", "MISS"),
        (Status("stale"), "conveyor; fwd=stale", "STALE"),
        (Status("stale", stored=True), "conveyor; fwd=stale; stored", "MISS"),
        (Status("bypass"), "conveyor; fwd=bypass; detail=cache-unavailable", "MISS"),
    ],
)
def test_each_outcome_has_its_headers(status: Status, cache_status: str, x_cache: str) -> None:
    assert status.headers() == {"Cache-Status": cache_status, "X-Cache": x_cache}


def test_a_response_built_from_several_parts_is_as_fresh_as_its_least_fresh_part() -> None:
    assert combined(Status("hit", ttl=5), Status("hit", ttl=9)) == Status("hit", ttl=5)
    assert combined(Status("hit", ttl=5), Status("stale")).outcome == "stale"
    assert combined(Status("stale"), Status("miss", stored=True)) == Status("miss", stored=True)


def test_etags_depend_on_the_body_and_the_tenant() -> None:
    assert etag("{}", "tenant-a") == etag("{}", "tenant-a")
    assert etag("{}", "tenant-a") != etag("{}", "tenant-b")
    assert etag("{}", "tenant-a") != etag("[]", "tenant-a")


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, False), ("", False), ('"x"', False), ('"a"', True), ('W/"a"', True), ('"x", "a"', True), ("*", True)],
)
def test_if_none_match_compares_weakly_over_a_list(header: str | None, expected: bool) -> None:
    assert matches(header, '"a"') is expected
