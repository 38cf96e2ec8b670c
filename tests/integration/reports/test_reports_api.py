"""Reports over HTTP: request, progress, download through a URL minted per click, tenant isolation, scopes."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from numbers_report import expected_row
from report_support import csv_rows, object_bytes


def _ready(reports_api, stack, body):
    created = reports_api.post("/v1/reports", body)
    assert created.status == 202, created.body
    stack.drain()
    report = reports_api.get(f"/v1/reports/{created.json()['id']}").json()
    assert report["state"] == "ready", report
    return report


def test_a_csv_report_is_streamed_to_s3_and_downloaded_through_a_fresh_presigned_url(reports_api, stack):
    # Given a report of 1,000 synthetic rows, in a time zone other than UTC
    body = {"type": "test.numbers", "filters": {"count": 1000}, "timezone": "Europe/Berlin"}

    # When it runs and the user clicks download
    report = _ready(reports_api, stack, body)
    download = reports_api.get(report["download_path"])

    # Then the route redirects to a presigned URL valid at most 600 s that downloads as an attachment
    assert download.status == 302, download.body
    url = urlparse(download.headers["location"])
    query = parse_qs(url.query)
    assert int(query["X-Amz-Expires"][0]) <= 600
    assert "attachment" in query["response-content-disposition"][0]
    assert report["filename"] in query["response-content-disposition"][0]
    assert download.headers["cache-control"] == "no-store"
    # and the file holds the header and exactly the rows, times shown in Europe/Berlin (UTC+1 in January)
    rows = csv_rows(object_bytes(stack, f"reports/{report['id']}.csv"))
    assert rows[0] == ["n", "name", "at", "amount", "even"]
    assert len(rows) == 1001 and report["rows"] == 1000
    assert rows[1] == ["0", "row 0", "2026-01-01 01:00:00", "0.0", "true"]
    assert rows[1000][0] == "999" and rows[1000][1] == "row 999"
    assert report["progress"] == {
        "rows_written": 1000,
        "estimated_rows": 1000,
        "percent": 100.0,
        "indeterminate": False,
    }
    assert report["size_bytes"] == len(object_bytes(stack, f"reports/{report['id']}.csv"))
    assert report["expires_at"] > report["finished_at"]


def test_another_tenants_report_is_not_found(reports_api, api_as, stack):
    report = _ready(reports_api, stack, {"type": "test.numbers", "filters": {"count": 3}})
    other = api_as("tenant-b", "reports:read,reports:write,jobs:read")

    assert other.get(f"/v1/reports/{report['id']}").status == 404
    assert other.get(f"/v1/reports/{report['id']}/download").status == 404
    assert other.get("/v1/reports").json()["items"] == []


def test_identical_requests_within_ten_minutes_return_the_same_report(reports_api, stack):
    body = {"type": "test.numbers", "filters": {"count": 3}, "timezone": "UTC"}
    first = reports_api.post("/v1/reports", body)
    again = reports_api.post("/v1/reports", body)
    other = reports_api.post("/v1/reports", {**body, "filters": {"count": 4}})

    assert (first.status, again.status, other.status) == (202, 200, 202)
    assert again.json()["id"] == first.json()["id"]
    assert other.json()["id"] != first.json()["id"]


def test_filters_time_zone_and_scopes_are_validated(reports_api, api_as, stack):
    bad_filter = reports_api.post("/v1/reports", {"type": "test.numbers", "filters": {"count": -1}})
    unknown_filter = reports_api.post("/v1/reports", {"type": "jobs", "filters": {"colour": "red"}})
    bad_zone = reports_api.post("/v1/reports", {"type": "jobs", "timezone": "Mars/Olympus"})
    unknown_type = reports_api.post("/v1/reports", {"type": "nope"})
    backwards = reports_api.post("/v1/reports", {"type": "jobs", "filters": {"from": "2026-02-01", "to": "2026-01-01"}})
    numeric_bom = reports_api.post("/v1/reports", {"type": "jobs", "bom": 0})  # a boolean, as documented

    assert bad_filter.status == 422 and bad_filter.json()["error"]["details"][0]["loc"][:3] == [
        "body",
        "filters",
        "count",
    ]
    assert unknown_filter.status == 422
    assert bad_zone.status == 422 and "IANA" in bad_zone.json()["error"]["message"]
    assert unknown_type.status == 422
    assert backwards.status == 422
    assert numeric_bom.status == 422

    # a key with reports:write but not the data's own read scope cannot export it
    reports_only = api_as("tenant-a", "reports:read,reports:write")
    refused = reports_only.post("/v1/reports", {"type": "contacts"})
    assert refused.status == 403 and refused.json()["error"]["details"]["required_scope"] == "reminders:read"
    # and reading reports needs reports:read
    assert api_as("tenant-a", "jobs:read").get("/v1/reports").status == 403


def test_a_report_not_ready_cannot_be_downloaded(reports_api, stack):
    created = reports_api.post("/v1/reports", {"type": "test.numbers", "filters": {"count": 3}}).json()

    pending = reports_api.get(f"/v1/reports/{created['id']}/download")

    assert created["state"] == "queued" and created["download_path"] is None
    assert pending.status == 409


def test_the_report_types_are_listed_with_columns_and_filter_schemas(reports_api, stack):
    types = {t["name"]: t for t in reports_api.get("/v1/report-types").json()["items"]}

    assert {"jobs", "reminders", "appointments", "notifications", "contacts", "webhook-deliveries"} <= set(types)
    assert types["jobs"]["scope"] == "jobs:read"
    assert "from" in types["jobs"]["filters"]["properties"]
    assert expected_row(1)[0] == 1
