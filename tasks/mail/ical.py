"""The iCalendar invitation (`invite.ics`) the Rapid Review meeting's email carries: times in
Europe/London with a TZID and the zone's definition, one UID per case's meeting, and a SEQUENCE
that rises with every update, so a calendar replaces the meeting rather than adding another."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from models.calendar import LONDON
from tasks.mail.checked import MeetingPlace, require_aware


def meeting_ics(*, case_ref: str, starts_at: datetime, duration: timedelta, place: MeetingPlace,
                organizer: str, attendees: Sequence[str], dashboard_url: str, issued_at: datetime,
                sequence: int) -> bytes:
    """The meeting of case `case_ref` as an iCalendar REQUEST from `organizer` to `attendees`;
    `issued_at` is its DTSTAMP (an update must carry a later one)."""
    # Imported here: icalendar is only needed for invitations.
    from icalendar import Calendar, Event, vCalAddress

    require_aware(issued_at, "issued_at")
    calendar = Calendar()
    calendar.add("prodid", "-//Safeguarding review pipeline//sbu//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "REQUEST")
    event = Event()
    # One UID per case's meeting: a rescheduled invitation (higher SEQUENCE) replaces the first.
    event.add("uid", f"rr-meeting-{case_ref.lower()}@{organizer.rpartition('@')[2]}")
    event.add("dtstamp", issued_at.astimezone(UTC))
    event.add("sequence", sequence)
    event.add("dtstart", starts_at.astimezone(LONDON))
    event.add("dtend", (starts_at + duration).astimezone(LONDON))
    event.add("location", str(place))
    event.add("summary", f"Rapid Review meeting: {case_ref}")
    event.add("description", f"Rapid Review meeting for case {case_ref}. Case record: {dashboard_url}")
    event.add("organizer", vCalAddress(f"mailto:{organizer}"))
    for address in dict.fromkeys(attendees):
        attendee = vCalAddress(f"mailto:{address}")
        attendee.params["ROLE"] = "REQ-PARTICIPANT"
        attendee.params["PARTSTAT"] = "NEEDS-ACTION"
        attendee.params["RSVP"] = "TRUE"
        event.add("attendee", attendee, encode=False)
    calendar.add_component(event)
    # A VTIMEZONE for Europe/London, so clients without the Olson database read the TZID right;
    # the year either side of the meeting is enough and keeps the definition short.
    local_day = starts_at.astimezone(LONDON).date()
    calendar.add_missing_timezones(first_date=local_day - timedelta(days=366),
                                   last_date=local_day + timedelta(days=366))
    return bytes(calendar.to_ical())
