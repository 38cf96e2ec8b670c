"""Changes around a medication schedule or appointment: recreating a deleted schedule, a contact moving to
another time zone, and times that cannot be planned (refused before anything is stored)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.integration.reminders.test_medication_schedules import doses, local


def schedule(day: str, **fields: Any) -> dict[str, Any]:
    return {
        "contact_id": "c1",
        "medication": "Carprofen",
        "dose": "1 chew",
        "times_of_day": ["08:00", "20:00"],
        "start_date": day,
        "end_date": day,
        **fields,
    }


def test_a_schedule_deleted_and_created_again_with_the_same_id_reminds_of_every_dose(
    rapi: Any, contact: Any, sweep: Any, outbox: Any
) -> None:
    # Given a schedule for tomorrow, deleted (its reminders cancelled)
    contact("c1", timezone="Europe/London", channels=["email"])
    tomorrow = (datetime.now(ZoneInfo("Europe/London")).date() + timedelta(days=1)).isoformat()
    rapi.request("PUT", "/v1/medication-schedules/m1", schedule(tomorrow))
    assert rapi.request("DELETE", "/v1/medication-schedules/m1").status == 204

    # When it is created again under the same id
    again = rapi.request("PUT", "/v1/medication-schedules/m1", schedule(tomorrow))

    # Then it is new (201) with a revision after the deleted one's, and both of its doses are pending
    assert again.status == 201 and again.json()["revision"] == 2
    pending = doses(rapi, "m1", "pending")
    assert [local(r["dose_at"], "Europe/London").strftime("%H:%M") for r in pending] == ["08:00", "20:00"]
    # And the scheduler sends each at its time
    for reminder in pending:
        sweep(datetime.fromisoformat(reminder["remind_at"].replace("Z", "+00:00")) + timedelta(seconds=30))
    assert len(outbox.to("ada@example.com")) == 2


def test_a_contacts_new_time_zone_moves_their_doses_to_the_same_local_times(
    rapi: Any, contact: Any, sweep: Any, outbox: Any
) -> None:
    # Given a London contact with a dose at 08:00 local tomorrow
    contact("c1", timezone="Europe/London", channels=["email"])
    day = (datetime.now(ZoneInfo("UTC")).date() + timedelta(days=1)).isoformat()
    rapi.request("PUT", "/v1/medication-schedules/m1", schedule(day, times_of_day=["08:00"]))

    # When the contact moves to New York
    contact("c1", timezone="America/New_York", channels=["email"])

    # Then the schedule is re-planned in New York time: the London dose is cancelled, one at 08:00 New York
    assert rapi.get("/v1/medication-schedules/m1").json()["timezone"] == "America/New_York"
    states = [(local(r["dose_at"], "America/New_York").strftime("%H:%M"), r["state"]) for r in doses(rapi, "m1")]
    assert ("08:00", "pending") in states and ("03:00", "cancelled") in states
    # And the reminder that goes out says 08:00 in New York's zone
    (new,) = doses(rapi, "m1", "pending")
    sweep(datetime.fromisoformat(new["remind_at"].replace("Z", "+00:00")) + timedelta(seconds=30))
    (email,) = outbox.to("ada@example.com")
    assert "08:00 E" in email.subject, email.subject


def test_an_appointment_whose_local_time_cannot_be_represented_is_refused_and_not_stored(
    rapi: Any, contact: Any
) -> None:
    contact("c1", timezone="Asia/Tokyo")
    body = {"contact_id": "c1", "subject_name": "Rex", "starts_at": "9999-12-31T22:00:00Z"}
    response = rapi.request("PUT", "/v1/appointments/a1", body)
    assert response.status == 422, response.body
    assert rapi.get("/v1/appointments/a1").status == 404


def test_a_schedule_ending_at_the_end_of_time_is_refused_and_never_reaches_the_scheduler(
    rapi: Any, contact: Any, sweep: Any
) -> None:
    contact("c1", timezone="Europe/London")
    today = datetime.now(ZoneInfo("UTC")).date().isoformat()
    response = rapi.request("PUT", "/v1/medication-schedules/m1", schedule(today, end_date="9999-12-31"))
    assert response.status == 422, response.body
    assert rapi.get("/v1/medication-schedules/m1").status == 404
    assert sweep(datetime.now(ZoneInfo("UTC")) + timedelta(days=1), deliver=False)["sweep_reminders"] == 0
