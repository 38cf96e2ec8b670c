"""The connectors' pure parts: mapping to contacts (E.164, IANA zones), Retry-After and vendor rate-limit headers,
webhook verification per vendor, the watermark rule. No network, no moto."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest

from conveyor.connectors import Config, connector
from conveyor.connectors.base import e164, retry_after_header
from conveyor.connectors.hubspot import hubspot_zone, verify_v3
from conveyor.sync.domain import next_watermark

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CONFIG = Config(base_url="https://crm.example", token_url="https://crm.example/token", default_region="US")


def test_phones_become_e164_and_invalid_ones_are_dropped():
    assert e164("(212) 555-0123", "US") == "+12125550123"
    assert e164("020 7946 0018", "GB") == "+442079460018"
    assert e164("+44 20 7946 0018", "US") == "+442079460018"
    assert e164("not a phone", "US") is None
    assert e164("", "US") is None


def test_hubspot_time_zone_enumeration_maps_to_iana_names():
    assert hubspot_zone("america_slash_new_york") == "America/New_York"
    assert hubspot_zone("europe_slash_london") == "Europe/London"
    assert hubspot_zone("nowhere_slash_atlantis") is None
    assert hubspot_zone(None) is None


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after_header({"retry-after": "30"}, NOW) == 30
    assert retry_after_header({"retry-after": "Tue, 01 Dec 2026 12:01:00 GMT"}, NOW) == 60
    assert retry_after_header({}, NOW) is None


@pytest.mark.parametrize(
    ("vendor", "headers", "expected"),
    [
        ("hubspot", {"retry-after": "30"}, 30),
        ("hubspot", {"x-hubspot-ratelimit-interval-milliseconds": "10000", "x-hubspot-ratelimit-remaining": "0"}, 10),
        ("pipedrive", {"x-ratelimit-reset": "7", "x-ratelimit-remaining": "0"}, 7),
        ("zoho", {"x-ratelimit-reset": str(int((NOW + timedelta(seconds=45)).timestamp() * 1000))}, 45),
        ("zoho", {}, 60),
    ],
)
def test_a_429_waits_as_long_as_the_vendor_says(vendor, headers, expected):
    assert connector(vendor, CONFIG).retry_after(429, headers, NOW) == expected


def test_a_successful_answer_with_budget_left_needs_no_wait():
    hubspot = connector("hubspot", CONFIG)
    assert hubspot.retry_after(200, {"x-hubspot-ratelimit-remaining": "99"}, NOW) is None


def _hubspot_signed(secret: str, url: str, body: bytes, stamp: int) -> dict[str, str]:
    source = b"POST" + url.encode() + body + str(stamp).encode()
    signature = base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()
    return {"x-hubspot-signature-v3": signature, "x-hubspot-request-timestamp": str(stamp)}


def test_hubspot_v3_signatures_verify_within_five_minutes_only():
    url, body, secret = "https://api.example/v1/connections/con_1/webhook", b'[{"objectId": 1}]', "app-secret"
    now_ms = int(NOW.timestamp() * 1000)
    headers = _hubspot_signed(secret, url, body, now_ms)
    assert verify_v3("POST", url, headers, body, secret, now_ms=now_ms + 1000)
    assert not verify_v3("POST", url, headers, body + b" ", secret, now_ms=now_ms)  # body changed
    assert not verify_v3("POST", url, headers, body, "other-secret", now_ms=now_ms)
    assert not verify_v3("POST", url, headers, body, secret, now_ms=now_ms + 5 * 60 * 1000 + 1)  # too old


def test_pipedrive_webhooks_verify_by_basic_auth_and_zoho_by_token():
    pipedrive, zoho = connector("pipedrive", CONFIG), connector("zoho", CONFIG)
    good = {"authorization": "Basic " + base64.b64encode(b"conveyor:s3cret-s3cret").decode()}
    assert pipedrive.verify_webhook("POST", "", good, b"{}", "s3cret-s3cret")
    assert not pipedrive.verify_webhook("POST", "", {}, b"{}", "s3cret-s3cret")
    assert zoho.verify_webhook("POST", "", {}, json.dumps({"token": "tok-tok-tok"}).encode(), "tok-tok-tok")
    assert not zoho.verify_webhook("POST", "", {}, json.dumps({"token": "nope"}).encode(), "tok-tok-tok")


def test_webhook_bodies_become_thin_changes():
    hubspot = connector("hubspot", CONFIG)
    body = json.dumps(
        [
            {"eventId": 1, "subscriptionType": "contact.propertyChange", "objectId": 42},
            {"eventId": 2, "subscriptionType": "contact.deletion", "objectId": 43},
            {"eventId": 3, "subscriptionType": "deal.creation", "objectId": 44},
        ]
    ).encode()
    assert [(c.external_id, c.kind) for c in hubspot.parse_webhook(body)] == [("42", "upsert"), ("43", "delete")]
    pipedrive = connector("pipedrive", CONFIG)
    deleted = json.dumps({"meta": {"action": "delete", "entity": "person", "entity_id": 7, "timestamp": 1}}).encode()
    assert [(c.external_id, c.kind) for c in pipedrive.parse_webhook(deleted)] == [("7", "delete")]


def test_the_watermark_is_the_newest_record_seen_capped_at_the_start_minus_the_lookback_and_never_moves_back():
    lookback = timedelta(minutes=5)
    started = NOW
    assert next_watermark(None, NOW - timedelta(hours=1), started, lookback) == NOW - timedelta(hours=1, minutes=5)
    assert next_watermark(None, NOW + timedelta(hours=1), started, lookback) == NOW - lookback  # capped at start
    old = NOW - timedelta(minutes=1)
    assert next_watermark(old, NOW - timedelta(hours=2), started, lookback) == old  # never backwards
    assert next_watermark(old, None, started, lookback) == old  # nothing seen: unchanged
