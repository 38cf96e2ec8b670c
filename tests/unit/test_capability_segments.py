"""The /v1 path segments each capability declares (conveyor/capabilities.py) are the ones its router serves.

The API mounts a capability's router on the first request for one of its segments, so a route under a segment
its capability does not declare would answer 404 until some other request happened to mount that router.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from conveyor import capabilities
from conveyor.capabilities import CAPABILITIES, Capability

SERVING = [c for c in CAPABILITIES if c.router]


def _routes(capability: Capability) -> list[tuple[str, str]]:
    """(method, rule) of each route of the capability's router, as written (`/jobs/<job_id>`)."""
    router: Any = capabilities.load_router(capability)
    return [(str(key[1]).upper(), str(key[0])) for key in router._routes]  # noqa: SLF001 - Powertools' route table


def _first_segment(rule: str) -> str:
    return rule.split("/")[1]


def _may_match_the_same_path(one: str, other: str) -> bool:
    """Powertools' `<param>` matches one segment: two rules meet when they have as many segments and each pair is
    the same text or a parameter on either side."""
    a, b = one.strip("/").split("/"), other.strip("/").split("/")
    return len(a) == len(b) and all(
        x == y or x.startswith("<") or y.startswith("<") for x, y in zip(a, b, strict=False)
    )


@pytest.mark.parametrize("capability", SERVING, ids=lambda c: c.name)
def test_every_route_is_under_a_segment_its_capability_declares(capability: Capability) -> None:
    routes = _routes(capability)
    assert routes, f"{capability.name}'s router has no routes"
    for method, rule in routes:
        segment = _first_segment(rule)
        assert not segment.startswith("<"), f"{method} {rule}: a /v1 route starts with a fixed segment"
        assert segment in capability.segments, (
            f"{method} /v1{rule} is served by {capability.name}, whose segments {capability.segments} lack "
            f"{segment!r}: add it to its line in conveyor/capabilities.py"
        )


@pytest.mark.parametrize("capability", SERVING, ids=lambda c: c.name)
def test_every_declared_segment_has_a_route_of_its_capability(capability: Capability) -> None:
    served = {_first_segment(rule) for _, rule in _routes(capability)}
    assert set(capability.segments) <= served, f"{capability.name} declares segments it has no route under"


def test_capabilities_sharing_a_segment_never_serve_the_same_request() -> None:
    """Two routers under one segment (admin's bulk operations under /v1/jobs) are mounted together, in list order;
    their routes must not overlap, so which route answers never depends on what was mounted first."""
    for one, other in itertools.combinations(SERVING, 2):
        for segment in set(one.segments) & set(other.segments):
            assert capabilities.serving(segment) == tuple(c for c in CAPABILITIES if segment in c.segments)
            ours = [r for r in _routes(one) if _first_segment(r[1]) == segment]
            theirs = [r for r in _routes(other) if _first_segment(r[1]) == segment]
            for (method, rule), (other_method, other_rule) in itertools.product(ours, theirs):
                assert method != other_method or not _may_match_the_same_path(rule, other_rule), (
                    f"{method} /v1{rule} ({one.name}) and /v1{other_rule} ({other.name}) can match one request"
                )


def test_a_segment_is_shared_only_where_the_capabilities_say_so() -> None:
    """Sharing costs the other capability's import on every request there: it is a choice, listed here."""
    shared = {s: [c.name for c in capabilities.serving(s)] for c in SERVING for s in c.segments}
    assert {s: names for s, names in shared.items() if len(names) > 1} == {"jobs": ["jobs", "admin"]}


def test_a_segment_nobody_serves_is_served_by_no_capability() -> None:
    assert capabilities.serving("no-such-thing") == ()
    assert capabilities.serving("") == ()
