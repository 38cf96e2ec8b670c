"""Report cells and files, pure: formula-injection escaping (OWASP), RFC 4180 CSV, time zones, report states."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest

from conveyor.reports.domain import Column, Kind, State, cell, escape_text, state_of, zone
from conveyor.reports.formats import BOM, CsvEncoder

LONDON = zone("Europe/London")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("Ada = Lovelace", "Ada = Lovelace"),
        ("", ""),
    ],
)
def test_text_a_spreadsheet_would_run_as_a_formula_is_prefixed_with_a_quote(text, shown):
    assert escape_text(text) == shown


def test_typed_values_are_kept_typed_and_a_negative_number_is_not_escaped():
    assert cell(-5, Kind.INTEGER, LONDON) == -5
    assert cell(-2.5, Kind.NUMBER, LONDON) == -2.5
    assert cell(True, Kind.BOOLEAN, LONDON) is True
    assert cell(date(2026, 3, 1), Kind.DATE, LONDON) == date(2026, 3, 1)
    # a value of the wrong kind is text, and escaped as text
    assert cell("-5", Kind.INTEGER, LONDON) == "'-5"
    assert cell(["email", "sms"], Kind.TEXT, LONDON) == "email;sms"
    assert cell(None, Kind.TEXT, LONDON) is None


def test_instants_are_shown_as_wall_clock_time_in_the_report_zone():
    summer = datetime(2026, 7, 1, 12, 0, 30, 999, tzinfo=UTC)
    assert cell(summer, Kind.DATETIME, LONDON) == datetime(2026, 7, 1, 13, 0, 30)
    assert cell(summer, Kind.DATETIME, zone("Asia/Kolkata")) == datetime(2026, 7, 1, 17, 30, 30)


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../etc/passwd", "/etc/localtime"])
def test_only_iana_zones_are_accepted(name):
    with pytest.raises(ValueError, match="IANA"):
        zone(name)


def test_csv_is_rfc_4180_with_crlf_quoting_and_an_optional_bom():
    columns = (Column("name"), Column("n", Kind.INTEGER), Column("at", Kind.DATETIME))
    encoder = CsvEncoder(columns, "UTC", bom=True)
    head = encoder.header()
    body = encoder.rows([('Smith, "Jo"', 1, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)), ("two\nlines", None, None)])

    assert head.startswith(BOM) and head[len(BOM) :] == b"name,n,at\r\n"
    assert body == b'"Smith, ""Jo""",1,2026-01-02 03:04:05\r\n"two\nlines",,\r\n'
    parsed = list(csv.reader(io.StringIO((head + body).decode("utf-8-sig"), newline="")))
    assert parsed == [["name", "n", "at"], ['Smith, "Jo"', "1", "2026-01-02 03:04:05"], ["two\nlines", "", ""]]
    assert not CsvEncoder(columns, "UTC").header().startswith(BOM)


def test_a_report_state_follows_its_process_and_expires_on_read():
    now = datetime(2026, 5, 1, tzinfo=UTC)
    later = now + timedelta(days=1)
    assert state_of("pending", None, now) is State.QUEUED
    assert state_of("running", None, now) is State.RUNNING
    assert state_of("completed", later, now) is State.READY
    assert state_of("completed", now, now) is State.EXPIRED  # TTL and lifecycle delete late: checked on read
    assert state_of("completed_with_errors", later, now) is State.FAILED  # a report is whole or nothing
    assert state_of("cancelled", None, now) is State.CANCELLED
