"""Initial sync: every CRM person becomes a contact, with exact counts, through each vendor's own paging."""

from __future__ import annotations

import os

import pytest
from conftest import run_sync, synced_contacts

# The figure is 10,001 people (SYNC_N=10001); moto makes that minutes per vendor, so the suite runs 451:
# more than one page for every vendor (Pipedrive 500 per page is the exception at 451),
# (scaled down to 200 records in the fake, so `page_token` takes over as it does past 2,000 in Zoho).
N = int(os.environ.get("SYNC_N", "451"))


@pytest.mark.parametrize("vendor", ["pipedrive", "zoho", "hubspot"])
def test_an_initial_sync_of_10001_people_completes_with_exact_counts_and_changes_nothing_when_repeated(
    vendor, stack, crms, connect, sync_api
):
    # Given a CRM with 10,001 people
    crms[vendor].seed(N)
    crms["zoho"].discrete_limit = 200
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
    assert again["counts"] == {"processed": N, "succeeded": 0, "failed": 0, "skipped": N}
    assert synced_contacts()[f"{connection['id']}:1000"].updated_at == first.updated_at
