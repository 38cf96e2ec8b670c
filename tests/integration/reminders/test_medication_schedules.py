"""Medication schedules: one reminder per dose, at local wall-clock times in the contact's zone, planned ahead
over a rolling horizon that the scheduler moves forward."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo


def doses(rapi: Any, schedule_id: str, state: str | None = None) -> list[dict[str, Any]]:
    query = f"?state={state}" if state else ""
    items = rapi.get(f"/v1/reminders{query}&limit=100" if query else "/v1/reminders?limit=100").json()["items"]
    return [r for r in items if r["medication_schedule_id"] == schedule_id]


def local(instant: str, zone: str) -> datetime:
    return datetime.fromisoformat(instant).astimezone(ZoneInfo(zone))


def test_times_of_day_make_one_reminder_per_dose_at_local_times(rapi: Any, contact: Any) -> None:
    # Given a New York contact
    contact("c1", timezone="America/New_York")
    tomorrow = datetime.now(ZoneInfo("America/New_York")).date() + timedelta(days=1)

    # When a twice-daily schedule runs tomorrow only
    response = rapi.request(
        "PUT",
        "/v1/medication-schedules/m1",
        {
            "contact_id": "c1",
            "medication": "Amoxicillin",
            "dose": "1 tablet",
            "times_of_day": ["20:00", "08:00"],
            "start_date": tomorrow.isoformat(),
            "end_date": tomorrow.isoformat(),
        },
    )

    # Then there are exactly two reminders: 08:00 and 20:00 New York time tomorrow, stored in UTC
    assert response.status == 201, response.json()
    assert response.json()["revision"] == 1 and response.json()["timezone"] == "America/New_York"
    reminders = doses(rapi, "m1")
    assert [
        (local(r["dose_at"], "America/New_York").date(), local(r["dose_at"], "America/New_York").strftime("%H:%M"))
        for r in reminders
    ] == [(tomorrow, "08:00"), (tomorrow, "20:00")]
    assert all(r["remind_at"].endswith("Z") and r["state"] == "pending" for r in reminders)


def test_every_n_hours_counts_elapsed_hours_from_the_start_time(rapi: Any, contact: Any) -> None:
    contact("c1", timezone="Asia/Tokyo")
    tomorrow = datetime.now(ZoneInfo("Asia/Tokyo")).date() + timedelta(days=1)

    rapi.request(
        "PUT",
        "/v1/medication-schedules/m1",
        {
            "contact_id": "c1",
            "medication": "Insulin",
            "dose": "4 units",
            "every_hours": 8,
            "start_time": "06:00",
            "start_date": tomorrow.isoformat(),
            "end_date": tomorrow.isoformat(),
        },
    )

    assert [local(r["dose_at"], "Asia/Tokyo").strftime("%H:%M") for r in doses(rapi, "m1")] == [
        "06:00",
        "14:00",
        "22:00",
    ]


def test_the_sweep_rolls_the_horizon_forward_and_doses_follow_local_time_across_dst(
    rapi: Any, contact: Any, sweep: Any, outbox: Any
) -> None:
    # Given a London schedule at 08:00 local over the weekend the clocks go forward (2099-03-29, 01:00 UTC)
    contact("c1", timezone="Europe/London")
    created = rapi.request(
        "PUT",
        "/v1/medication-schedules/m1",
        {
            "contact_id": "c1",
            "medication": "Carprofen",
            "dose": "1 chew",
            "times_of_day": ["08:00"],
            "start_date": "2099-03-28",
            "end_date": "2099-03-30",
        },
    ).json()
    # Nothing is planned yet: the first dose is beyond the horizon
    assert doses(rapi, "m1") == []

    # When the scheduler runs from two days before (each midnight, and at 08:00 local on the first two days)
    for hour in ("26T00:00", "27T00:00", "28T00:00", "28T08:00", "29T00:00", "29T07:00", "30T00:00"):
        sweep(datetime.fromisoformat(f"2099-03-{hour}+00:00"))

    # Then each day got one reminder at 08:00 local: 08:00 UTC before the change, 07:00 UTC after
    assert [r["dose_at"] for r in doses(rapi, "m1")] == [
        "2099-03-28T08:00:00Z",
        "2099-03-29T07:00:00Z",
        "2099-03-30T07:00:00Z",
    ]
    assert created["planned_until"] < "2099"
    schedule = rapi.get("/v1/medication-schedules/m1").json()
    assert schedule["planned_until"] >= "2099-03-30T07:00:00Z"
    # And the doses due so far were sent at dose time, rendered in local time
    assert [e.subject for e in outbox.emails] == [
        "Time for Carprofen: 1 chew (Sat 28 Mar 2099, 08:00 GMT)",
        "Time for Carprofen: 1 chew (Sun 29 Mar 2099, 08:00 BST)",
    ]


def test_changing_the_schedule_replans_and_deleting_it_cancels(rapi: Any, contact: Any) -> None:
    contact("c1", timezone="Europe/London")
    tomorrow = datetime.now(ZoneInfo("Europe/London")).date() + timedelta(days=1)
    body = {
        "contact_id": "c1",
        "medication": "A",
        "dose": "1",
        "times_of_day": ["09:00"],
        "start_date": tomorrow.isoformat(),
        "end_date": tomorrow.isoformat(),
    }
    rapi.request("PUT", "/v1/medication-schedules/m1", body)

    # A new dose time: the 09:00 reminder is cancelled, one at 10:00 is planned
    changed = rapi.request("PUT", "/v1/medication-schedules/m1", {**body, "times_of_day": ["10:00"]})
    assert changed.status == 200 and changed.json()["revision"] == 2
    assert [(local(r["dose_at"], "Europe/London").strftime("%H:%M"), r["state"]) for r in doses(rapi, "m1")] == [
        ("09:00", "cancelled"),
        ("10:00", "pending"),
    ]

    # A new dose text alone does not re-plan
    assert (
        rapi.request("PUT", "/v1/medication-schedules/m1", {**body, "times_of_day": ["10:00"], "dose": "2"}).json()[
            "revision"
        ]
        == 2
    )

    # Deleting cancels what is left
    assert rapi.request("DELETE", "/v1/medication-schedules/m1").status == 204
    assert {r["state"] for r in doses(rapi, "m1")} == {"cancelled"}
    assert rapi.get("/v1/medication-schedules/m1").status == 404
    assert rapi.request("DELETE", "/v1/medication-schedules/m1").status == 404


def test_an_ongoing_hourly_schedule_plans_only_the_horizon(rapi: Any, contact: Any) -> None:
    contact("c1", timezone="UTC")
    rapi.request(
        "PUT",
        "/v1/medication-schedules/m1",
        {
            "contact_id": "c1",
            "medication": "Drip",
            "dose": "check",
            "every_hours": 1,
            "start_time": "00:00",
            "start_date": date.today().isoformat(),
        },
    )

    # 48 hours ahead, not months of items
    assert 47 <= len(doses(rapi, "m1")) <= 49
