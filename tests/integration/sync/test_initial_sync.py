"""Initial sync: every CRM person becomes a contact, with exact counts, through each vendor's own paging."""

from __future__ import annotations

import os

import pytest
from sync_support import run_sync, synced_contacts

# The figure is 10,001 people (SYNC_N=10001 runs it); moto makes that minutes per vendor, so the suite runs
# 201 with the fakes' page limits scaled down, so every vendor's paging is walked past its first page: Zoho past
# its page-only reach (200 here, 2,000 in Zoho) onto page_token, Pipedrive's cursor over pages of 100.
N = int(os.environ.get("SYNC_N", "201"))


@pytest.mark.parametrize("vendor", ["pipedrive", "zoho", "hubspot"])
def test_an_initial_sync_completes_with_exact_counts_and_changes_nothing_when_repeated(
    vendor, stack, crms, connect, sync_api
):
    # Given a CRM with N people (the issue: 10,001)
    crms[vendor].seed(N)
    crms["zoho"].discrete_limit = 200
    crms["pipedrive"].page_limit = 100
    connection = connect(vendor)

    # When an initial sync runs to its end
    process = run_sync(sync_api, stack, connection["id"])

    # Then it completed with exact counts, and every person is a contact (E.164 phone, their time zone)
    assert process["state"] == "completed", process
    assert process["counts"] == {"processed": N, "succeeded": N, "failed": 0, "skipped": 0}
    contacts = synced_contacts()
    assert len(contacts) == N
    first = contacts[f"{connection['id']}:1000"]
    assert first.phone == "+12125550000" and first.email == "person0@example.com"
    assert first.timezone == "Europe/London" and first.source == f"crm:{connection['id']}"

    # When it runs again, nothing changes
    again = run_sync(sync_api, stack, connection["id"])
    assert again["state"] == "completed"
    pages = {
        "pipedrive": "GET /api/v2/persons",
        "zoho": "GET /crm/v8/Contacts",
        "hubspot": "GET /crm/v3/objects/contacts",
    }
    assert crms[vendor].calls[pages[vendor]] >= 4  # more than one page per sync: the vendor's paging was walked
    assert again["counts"] == {"processed": N, "succeeded": 0, "failed": 0, "skipped": N}
    assert synced_contacts()[f"{connection['id']}:1000"].updated_at == first.updated_at
