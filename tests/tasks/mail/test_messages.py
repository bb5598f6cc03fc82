"""The builders: one per event, from templates, with dedup keys from stable ids and ISO dates,
due times in London, and a meeting invitation that calendar software reads right."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from uuid import UUID

import pytest
from icalendar import Calendar
from pydantic import ValidationError

from models.calendar import LONDON, end_of_london_day
from models.enums import Agency, CasePath, Role, RunLoss, StepState
from models.processes import STEP_RULES, StepId
from tasks.mail import messages
from tasks.mail.checked import MeetingPlace, ProcessName, SectionName, StepName, StepTitle, Subject
from tasks.mail.directory import Directory
from tasks.mail.messages import DigestRow
from tasks.mail.rendering import EmailDraft

DASHBOARD = "http://127.0.0.1:4200/runs"
REF = "SR-2026-0007"
PLACE = MeetingPlace("Committee Room 2, Civic Centre")
ISSUED = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
SECTIONS = [SectionName("agency-involvement"), SectionName("analysis"), SectionName("learning")]


def test_referral_received_goes_to_the_three_dsps_with_the_due_time_in_london(
        directory: Directory) -> None:
    # Due by the end of Tuesday 7 April 2026 (BST): end_of_london_day gives 23:00 UTC.
    draft = messages.referral_received_email(case_ref=REF, due_at=end_of_london_day(date(2026, 4, 7)),
                                             directory=directory, dashboard_url=DASHBOARD)
    assert draft.to == directory.dsps
    assert draft.cc == (directory.address(Role.SBU),)
    assert draft.dedup_key == f"referral-received:{REF}"
    assert "23:59 on Tuesday 7 April 2026 (London time)" in draft.subject
    assert "within one working day" in draft.text
    assert REF in draft.subject
    assert DASHBOARD in draft.text
    assert draft.html is not None
    assert f'href="{DASHBOARD}"' in draft.html


def test_a_due_time_within_the_day_is_shown_as_london_wall_time(directory: Directory) -> None:
    draft = messages.referral_received_email(case_ref=REF, due_at=datetime(2026, 1, 13, 16, 30, tzinfo=UTC),
                                             directory=directory, dashboard_url=DASHBOARD)
    assert "16:30 on Tuesday 13 January 2026" in draft.subject
    summer = messages.referral_received_email(case_ref=REF, due_at=datetime(2026, 7, 14, 16, 30, tzinfo=UTC),
                                              directory=directory, dashboard_url=DASHBOARD)
    assert "17:30 on Tuesday 14 July 2026" in summer.subject


@pytest.mark.parametrize(("event", "build"), [
    ("reminder", messages.reminder_email),
    ("overdue", messages.overdue_email),
    ("step-opened", messages.step_opened_email),
])
def test_step_messages_go_to_the_owner_with_a_dedup_key_per_step_and_due_date(
        directory: Directory, event: str, build: messages.StepBuilder) -> None:
    draft = build(case_ref=REF, step=StepId.SIN_SUBMISSION, due=date(2026, 3, 6),
                  owner=Role.LOCAL_AUTHORITY, directory=directory, dashboard_url=DASHBOARD)
    assert draft.event == event
    assert draft.to == (directory.address(Role.LOCAL_AUTHORITY),)
    assert draft.dedup_key == f"{event}:{REF}:sin-submission:2026-03-06"
    assert "Friday 6 March 2026" in draft.subject
    assert REF in draft.subject
    assert "sin-submission" in draft.text
    assert DASHBOARD in draft.text
    again = build(case_ref=REF, step=StepId.SIN_SUBMISSION, due=date(2026, 3, 6),
                  owner=Role.LOCAL_AUTHORITY, directory=directory, dashboard_url=DASHBOARD)
    assert again == draft  # the same inputs build the same email


def test_escalation_goes_to_the_dsps_once_per_working_day(directory: Directory) -> None:
    monday, tuesday = (messages.escalation_email(case_ref=REF, step=StepId.RR_MEETING, due=date(2026, 3, 6),
                                                 on=day, directory=directory, dashboard_url=DASHBOARD)
                       for day in (date(2026, 3, 9), date(2026, 3, 10)))
    assert monday.to == directory.dsps
    assert monday.dedup_key == f"escalation:{REF}:rr-meeting:2026-03-06:2026-03-09"
    assert monday.dedup_key != tuesday.dedup_key


def test_decision_and_information_request(directory: Directory) -> None:
    decision = messages.decision_recorded_email(case_ref=REF, path=CasePath.SIN_AND_RAPID_REVIEW,
                                                directory=directory, dashboard_url=DASHBOARD)
    assert "Serious Incident Notification and Rapid Review" in decision.subject
    assert decision.dedup_key == f"decision-recorded:{REF}"
    request = messages.rr_information_request_email(case_ref=REF, agency=Agency.EDUCATION,
                                                    due=date(2026, 3, 13), directory=directory,
                                                    dashboard_url=DASHBOARD)
    assert request.to == (directory.agency_lead(Agency.EDUCATION),)
    assert request.dedup_key == f"rr-information-request:{REF}:education:2026-03-13"


def test_daily_digest_lists_overdue_first(directory: Directory) -> None:
    rows = [DigestRow(case_ref="SR-2026-0002", step=StepId.SIN_SUBMISSION, due=date(2026, 3, 9),
                      state=StepState.OPEN, overdue=False),
            DigestRow(case_ref="SR-2026-0001", step=StepId.RR_MEETING, due=date(2026, 3, 4),
                      state=StepState.OPEN, overdue=True)]
    draft = messages.daily_digest_email(day=date(2026, 3, 5), rows=rows, open_cases=2,
                                        horizon_end=date(2026, 3, 12), directory=directory,
                                        dashboard_url=DASHBOARD)
    assert draft.to == (directory.address(Role.SBU),)
    assert draft.cc == ()
    assert draft.dedup_key == "daily-digest:default:2026-03-05"
    assert draft.subject == ("[SBU] Daily digest for Thursday 5 March 2026: 1 overdue, 0 due today, "
                             "2 open cases")
    assert draft.text.index("SR-2026-0001") < draft.text.index("SR-2026-0002")
    empty = messages.daily_digest_email(day=date(2026, 3, 5), rows=[], open_cases=0,
                                        horizon_end=date(2026, 3, 12), directory=directory,
                                        dashboard_url=DASHBOARD)
    assert "Nothing is open." in empty.text


@pytest.mark.parametrize(("starts_at", "local_time", "offset"), [
    (datetime(2026, 7, 14, 9, 30, tzinfo=UTC), "10:30", timedelta(hours=1)),   # BST
    (datetime(2026, 1, 13, 9, 30, tzinfo=UTC), "09:30", timedelta(0)),         # GMT
])
def test_the_meeting_invitation_parses_with_the_london_date_and_time(
        directory: Directory, starts_at: datetime, local_time: str, offset: timedelta) -> None:
    draft = messages.rr_meeting_invitation_email(
        case_ref=REF, starts_at=starts_at, duration=timedelta(hours=2),
        place=PLACE, agencies=[Agency.POLICE, Agency.HEALTH, Agency.EDUCATION], directory=directory,
        dashboard_url=DASHBOARD, issued_at=ISSUED, sequence=0)
    [attachment] = draft.attachments
    assert attachment.filename == "invite.ics"
    assert (attachment.maintype, attachment.subtype) == ("text", "calendar")
    assert ("method", "request") in attachment.params

    calendar = Calendar.from_ical(attachment.data)
    assert str(calendar["method"]) == "REQUEST"
    [event] = calendar.walk("VEVENT")
    start, end = event.decoded("dtstart"), event.decoded("dtend")
    assert event["dtstart"].params["TZID"] == "Europe/London"
    assert start.date() == starts_at.date()
    assert start.strftime("%H:%M") == local_time
    assert start.utcoffset() == offset
    assert start == starts_at
    assert end - start == timedelta(hours=2)
    assert str(event["uid"]) == f"rr-meeting-{REF.lower()}@partnership.example"
    attendees = {str(attendee).removeprefix("mailto:") for attendee in cast(list[Any], event["attendee"])}
    assert {directory.agency_lead(Agency.EDUCATION), *directory.dsps} <= attendees
    assert [tz["tzid"] for tz in calendar.walk("VTIMEZONE")] == ["Europe/London"]
    local = starts_at.astimezone(LONDON)
    assert f"{local:%H:%M}" in draft.subject
    assert f"{local:%H:%M}" in draft.text


def test_no_header_injection_through_any_value(directory: Directory) -> None:
    with pytest.raises(ValueError, match="case reference"):
        messages.reminder_email(case_ref="SR-1\r\nBcc: spy@evil.example", step=StepId.RR_MEETING,
                                due=date(2026, 3, 6), owner=Role.SBU, directory=directory,
                                dashboard_url=DASHBOARD)
    with pytest.raises(ValueError, match="dashboard_url"):
        messages.reminder_email(case_ref=REF, step=StepId.RR_MEETING, due=date(2026, 3, 6),
                                owner=Role.SBU, directory=directory,
                                dashboard_url="http://x.example/\r\nBcc: spy@evil.example")
    good = messages.reminder_email(case_ref=REF, step=StepId.RR_MEETING, due=date(2026, 3, 6),
                                   owner=Role.SBU, directory=directory, dashboard_url=DASHBOARD)
    with pytest.raises(ValidationError):
        EmailDraft.model_validate({**good.model_dump(), "subject": "Hello\r\nBcc: spy@evil.example"})
    with pytest.raises(ValidationError):
        EmailDraft.model_validate({**good.model_dump(), "to": ("a@x.example\nBcc: b@evil.example",)})


def test_a_trailing_newline_is_refused(directory: Directory) -> None:
    # `$` in a Python pattern also matches before a final newline: the checks must not allow it.
    with pytest.raises(ValueError, match="case reference"):
        messages.reminder_email(case_ref=REF + "\n", step=StepId.RR_MEETING, due=date(2026, 3, 6),
                                owner=Role.SBU, directory=directory, dashboard_url=DASHBOARD)
    with pytest.raises(ValueError, match="dashboard_url"):
        messages.reminder_email(case_ref=REF, step=StepId.RR_MEETING, due=date(2026, 3, 6),
                                owner=Role.SBU, directory=directory, dashboard_url=DASHBOARD + "\n")
    with pytest.raises(ValueError, match="subject"):
        Subject("police\n")
    good = messages.reminder_email(case_ref=REF, step=StepId.RR_MEETING, due=date(2026, 3, 6),
                                   owner=Role.SBU, directory=directory, dashboard_url=DASHBOARD)
    for field in ("dedup_key", "event"):
        with pytest.raises(ValidationError):
            EmailDraft.model_validate({**good.model_dump(), field: getattr(good, field) + "\n"})


def test_a_naive_due_time_is_refused(directory: Directory) -> None:
    with pytest.raises(ValueError, match="timezone"):
        messages.referral_received_email(case_ref=REF, due_at=datetime(2026, 3, 6, 17, 0),
                                         directory=directory, dashboard_url=DASHBOARD)


# -- steps owed by an agency -----------------------------------------------------------------------

@pytest.mark.parametrize(("event", "build", "copied"), [
    ("reminder", messages.reminder_email, False),
    ("overdue", messages.overdue_email, True),
    ("step-opened", messages.step_opened_email, True),
])
def test_a_step_owed_by_an_agency_goes_to_its_lead(directory: Directory, event: str,
                                                   build: messages.StepBuilder, copied: bool) -> None:
    draft = build(case_ref=REF, step=StepId.RR_AGENCY_RESPONSES, due=date(2026, 3, 6),
                  owner=Agency.EDUCATION, directory=directory, dashboard_url=DASHBOARD)
    assert draft.to == (directory.agency_lead(Agency.EDUCATION),)
    assert draft.cc == ((directory.address(Role.SBU),) if copied else ())
    # With no subject of its own, the item is the agency's: each agency's email is its own.
    assert draft.dedup_key == f"{event}:{REF}:rr-agency-responses:education:2026-03-06"
    assert "rr-agency-responses:education" in draft.text
    assert "Agency: education" in draft.text
    assert draft.html is not None
    assert "<td>education</td>" in draft.html
    police = build(case_ref=REF, step=StepId.RR_AGENCY_RESPONSES, due=date(2026, 3, 6),
                   owner=Agency.POLICE, directory=directory, dashboard_url=DASHBOARD)
    assert police.dedup_key != draft.dedup_key
    # An action is named by its number, and still goes to the agency that owes it.
    action = build(case_ref=REF, step=StepId.ACTION, subject=Subject("a1"), due=date(2026, 9, 1),
                   owner=Agency.EDUCATION, directory=directory, dashboard_url=DASHBOARD)
    assert action.to == (directory.agency_lead(Agency.EDUCATION),)
    assert action.dedup_key == f"{event}:{REF}:action:a1:2026-09-01"


@pytest.mark.parametrize("build", [messages.reminder_email, messages.overdue_email,
                                   messages.step_opened_email])
def test_role_agency_is_not_an_address(directory: Directory, build: messages.StepBuilder) -> None:
    with pytest.raises(ValueError, match="pass the Agency"):
        build(case_ref=REF, step=StepId.CSPR_IMR, due=date(2026, 3, 6), owner=Role.AGENCY,
              directory=directory, dashboard_url=DASHBOARD)


def test_an_escalation_of_an_agency_item_still_goes_to_the_dsps(directory: Directory) -> None:
    draft = messages.escalation_email(case_ref=REF, step=StepId.RR_AGENCY_RESPONSES,
                                      subject=Subject("police"), due=date(2026, 3, 6),
                                      on=date(2026, 3, 9), directory=directory, dashboard_url=DASHBOARD)
    assert draft.to == directory.dsps
    assert draft.cc == (directory.address(Role.SBU),)
    assert draft.dedup_key == f"escalation:{REF}:rr-agency-responses:police:2026-03-06:2026-03-09"


# -- the meeting invitation and its updates --------------------------------------------------------

def _invitation(directory: Directory, *, sequence: int, starts_at: datetime, issued_at: datetime,
                place: MeetingPlace = PLACE) -> EmailDraft:
    return messages.rr_meeting_invitation_email(
        case_ref=REF, starts_at=starts_at, duration=timedelta(hours=2), place=place,
        agencies=[Agency.POLICE, Agency.EDUCATION], directory=directory, dashboard_url=DASHBOARD,
        issued_at=issued_at, sequence=sequence)


def _event(draft: EmailDraft) -> Any:
    [attachment] = draft.attachments
    calendar = Calendar.from_ical(attachment.data)
    assert str(calendar["method"]) == "REQUEST"
    [event] = calendar.walk("VEVENT")
    return event


def test_an_update_replaces_the_invitation_in_the_calendar(directory: Directory) -> None:
    first = _invitation(directory, sequence=0, starts_at=datetime(2026, 3, 12, 10, tzinfo=UTC),
                        issued_at=ISSUED)
    moved_to = MeetingPlace("https://meet.example/j/123?pwd=x&lang=en")
    update = _invitation(directory, sequence=2, starts_at=datetime(2026, 3, 13, 14, tzinfo=UTC),
                         issued_at=ISSUED + timedelta(days=1), place=moved_to)
    before, after = _event(first), _event(update)
    assert str(before["uid"]) == str(after["uid"]) == f"rr-meeting-{REF.lower()}@partnership.example"
    assert (before.decoded("sequence"), after.decoded("sequence")) == (0, 2)
    assert str(before["location"]) == PLACE
    assert str(after["location"]) == moved_to
    assert after["dtstart"].params["TZID"] == "Europe/London"
    assert after.decoded("dtstart") == datetime(2026, 3, 13, 14, tzinfo=UTC)
    assert before.decoded("dtstamp") == ISSUED
    assert after.decoded("dtstamp") > before.decoded("dtstamp")

    assert first.dedup_key == f"rr-meeting-invitation:{REF}:0"
    assert update.dedup_key == f"rr-meeting-invitation:{REF}:2"
    assert first.subject == (f"[{REF}] Rapid Review meeting: Thursday 12 March 2026, 10:00 to 12:00 "
                             "(London time)")
    assert update.subject == (f"[{REF}] Rapid Review meeting moved: Friday 13 March 2026, 14:00 to "
                              "16:00 (London time)")
    assert "has moved" in update.text
    assert "has moved" not in first.text
    assert f"Where: {PLACE}" in first.text
    assert first.to == (directory.agency_lead(Agency.POLICE), directory.agency_lead(Agency.EDUCATION),
                        *directory.dsps)
    assert first.cc == (directory.address(Role.SBU),)
    # A retry of the same update builds the same message, with the same key.
    assert _invitation(directory, sequence=2, starts_at=datetime(2026, 3, 13, 14, tzinfo=UTC),
                       issued_at=ISSUED + timedelta(days=1), place=moved_to) == update


def test_the_invitation_refuses_a_bad_sequence_or_a_naive_stamp(directory: Directory) -> None:
    starts_at = datetime(2026, 3, 12, 10, tzinfo=UTC)
    with pytest.raises(ValueError, match="sequence"):
        _invitation(directory, sequence=-1, starts_at=starts_at, issued_at=ISSUED)
    with pytest.raises(ValueError, match="timezone"):
        _invitation(directory, sequence=0, starts_at=starts_at, issued_at=datetime(2026, 3, 3, 9))


@pytest.mark.parametrize("place", [
    "Room 2\nBcc: spy@evil.example", "Room 2\r\nLOCATION:elsewhere", "Room <b>2</b>", "Room 2 > 1",
    "x" * 201, "x", "  ", "Room\t2", "Room\x002", "Room\u20282", "Room\x1b[31m2",
])
def test_a_place_that_is_not_one_plain_line_is_refused(place: str) -> None:
    with pytest.raises(ValueError, match="a meeting's place is") as caught:
        MeetingPlace(place)
    assert place not in str(caught.value)


def test_a_place_may_be_a_link_or_a_room_up_to_200_characters(directory: Directory) -> None:
    assert MeetingPlace("x" * 200) == "x" * 200
    assert MeetingPlace("https://teams.example/l/meetup-join/19%3a?context=%7b%22Tid%22%7d")
    place = MeetingPlace("Smith & Jones' \"Blue\" room")
    draft = _invitation(directory, sequence=0, starts_at=datetime(2026, 3, 12, 10, tzinfo=UTC),
                        issued_at=ISSUED, place=place)
    assert str(_event(draft)["location"]) == place
    assert f"Where: {place}" in draft.text
    assert draft.html is not None
    assert "Smith &amp; Jones&#39; &#34;Blue&#34; room" in draft.html
    # A plain string is checked all the same.
    with pytest.raises(ValueError, match="one printable line"):
        _invitation(directory, sequence=0, starts_at=datetime(2026, 3, 12, 10, tzinfo=UTC),
                    issued_at=ISSUED, place=cast(MeetingPlace, "Room\r\nBcc: spy@evil.example"))


# -- the review emails -----------------------------------------------------------------------------

def test_cspr_commissioned_goes_to_the_dsps(directory: Directory) -> None:
    draft = messages.cspr_commissioned_email(case_ref=REF, commissioned_on=date(2026, 5, 1),
                                             publication_target=date(2026, 11, 2), by_panel=False,
                                             directory=directory, dashboard_url=DASHBOARD)
    assert draft.event == "cspr-commissioned"
    assert draft.to == directory.dsps
    assert draft.cc == (directory.address(Role.SBU),)
    assert draft.dedup_key == f"cspr-commissioned:{REF}"
    assert draft.subject == (f"[{REF}] Child Safeguarding Practice Review commissioned: publication "
                             "target Monday 2 November 2026")
    assert "Friday 1 May 2026" in draft.text
    assert "National Panel" not in draft.text
    by_panel = messages.cspr_commissioned_email(case_ref=REF, commissioned_on=date(2026, 5, 1),
                                                publication_target=date(2026, 11, 2), by_panel=True,
                                                directory=directory, dashboard_url=DASHBOARD)
    assert "following the National Panel's response" in " ".join(by_panel.text.split())
    assert by_panel.html is not None
    assert "National Panel" in by_panel.html
    with pytest.raises(ValueError, match="publication_target"):
        messages.cspr_commissioned_email(case_ref=REF, commissioned_on=date(2026, 5, 1),
                                         publication_target=date(2026, 4, 30), by_panel=False,
                                         directory=directory, dashboard_url=DASHBOARD)


def test_imr_request_goes_to_the_agency_lead_with_the_template_sections(directory: Directory) -> None:
    draft = messages.imr_request_email(case_ref=REF, agency=Agency.HEALTH, due=date(2026, 6, 1),
                                       sections=SECTIONS, directory=directory, dashboard_url=DASHBOARD)
    assert draft.event == "imr-request"
    assert draft.to == (directory.agency_lead(Agency.HEALTH),)
    assert draft.cc == (directory.address(Role.SBU),)
    assert draft.dedup_key == f"imr-request:{REF}:health:2026-06-01"
    assert draft.subject == (f"[{REF}] Individual Management Review requested from health by "
                             "Monday 1 June 2026")
    assert draft.html is not None
    for words in ("Agency involvement", "Analysis", "Learning"):
        assert f"- {words}" in draft.text
        assert f"<li>{words}</li>" in draft.html
    text = " ".join(draft.text.split())
    assert "secure channel" in text
    assert "stores none of its content" in text
    assert "cspr-imr:health" in draft.text


def test_imr_incomplete_lists_the_missing_sections(directory: Directory) -> None:
    draft = messages.imr_incomplete_email(case_ref=REF, agency=Agency.HEALTH,
                                          missing=[SectionName("learning"), SectionName("analysis")],
                                          due=date(2026, 6, 8), directory=directory,
                                          dashboard_url=DASHBOARD)
    assert draft.event == "imr-incomplete"
    assert draft.to == (directory.agency_lead(Agency.HEALTH),)
    assert draft.cc == (directory.address(Role.SBU),)
    assert draft.dedup_key == f"imr-incomplete:{REF}:health:2026-06-08"
    assert draft.subject == (f"[{REF}] Individual Management Review from health incomplete: "
                             "2 sections missing, due Monday 8 June 2026")
    assert draft.text.index("- Learning") < draft.text.index("- Analysis")
    assert "Agency involvement" not in draft.text
    one = messages.imr_incomplete_email(case_ref=REF, agency=Agency.HEALTH,
                                        missing=[SectionName("learning")], due=date(2026, 6, 8),
                                        directory=directory, dashboard_url=DASHBOARD)
    assert "1 section missing" in one.subject


@pytest.mark.parametrize("build", [messages.imr_request_email, messages.imr_incomplete_email])
def test_an_imr_email_needs_sections_by_name(directory: Directory,
                                             build: Callable[..., EmailDraft]) -> None:
    field = "sections" if build is messages.imr_request_email else "missing"
    common: dict[str, Any] = {"case_ref": REF, "agency": Agency.HEALTH, "due": date(2026, 6, 1),
                              "directory": directory, "dashboard_url": DASHBOARD}
    with pytest.raises(ValueError, match="at least one section"):
        build(**common, **{field: []})
    with pytest.raises(ValueError, match="section"):
        build(**common, **{field: ["Agency involvement"]})


def test_action_assigned_names_the_action_not_its_wording(directory: Directory) -> None:
    draft = messages.action_assigned_email(case_ref=REF, action=Subject("a1"), agency=Agency.EDUCATION,
                                           due=date(2026, 9, 1), directory=directory,
                                           dashboard_url=DASHBOARD)
    assert draft.event == "action-assigned"
    assert draft.to == (directory.agency_lead(Agency.EDUCATION),)
    assert draft.cc == (directory.address(Role.SBU),)
    assert draft.dedup_key == f"action-assigned:{REF}:a1"
    assert draft.subject == f"[{REF}] Action a1 assigned to education, due Tuesday 1 September 2026"
    assert "action:a1" in draft.text
    with pytest.raises(ValueError, match="subject"):
        messages.action_assigned_email(case_ref=REF, action=cast(Subject, "Review the policy"),
                                       agency=Agency.EDUCATION, due=date(2026, 9, 1),
                                       directory=directory, dashboard_url=DASHBOARD)


def test_case_closed_goes_to_the_dsps(directory: Directory) -> None:
    draft = messages.case_closed_email(case_ref=REF, closed_on=date(2027, 1, 4), directory=directory,
                                       dashboard_url=DASHBOARD)
    assert draft.event == "case-closed"
    assert draft.to == directory.dsps
    assert draft.cc == (directory.address(Role.SBU),)
    assert draft.dedup_key == f"case-closed:{REF}"
    assert draft.subject == f"[{REF}] Case closed on Monday 4 January 2027"


@pytest.mark.parametrize("loss", list(RunLoss))
def test_run_repaired_alert_goes_to_the_sbu_once_per_lost_run(directory: Directory, loss: RunLoss) -> None:
    lost = UUID("0b5f2c1e-8f3a-4f7e-9d3c-2a1b0c9d8e7f")
    draft = messages.run_repaired_alert_email(case_ref=REF, process=ProcessName("rapid-review"), loss=loss,
                                              replaced=lost, directory=directory, dashboard_url=DASHBOARD)
    assert draft.event == "run-repaired-alert"
    assert draft.to == (directory.address(Role.SBU),)
    assert draft.cc == ()
    assert draft.dedup_key == f"run-repaired:{REF}:rapid-review:{lost}"
    assert draft.subject == f"[SBU] Case run repaired: {REF} (rapid-review)"
    assert str(lost) in draft.text
    assert f"Found:      {loss.value}" in draft.text


def test_section_names_read_as_words() -> None:
    assert SectionName("agency-involvement").words == "Agency involvement"
    assert SectionName("2-chronology").words == "2 chronology"
    for bad in ("Agency", "agency involvement", "-x", "x" * 41, "a\nb", ""):
        with pytest.raises(ValueError, match="IMR section's name"):
            SectionName(bad)


# -- every builder: no injection, escaped HTML -----------------------------------------------------

# Each builder with valid values for everything but case_ref, directory and dashboard_url.
BUILDERS: dict[str, tuple[Callable[..., EmailDraft], dict[str, Any]]] = {
    "referral-received": (messages.referral_received_email,
                          {"due_at": datetime(2026, 3, 3, 23, tzinfo=UTC)}),
    "decision-recorded": (messages.decision_recorded_email, {"path": CasePath.SIN_ONLY}),
    "step-opened": (messages.step_opened_email,
                    {"step": StepId.CSPR_IMR, "due": date(2026, 6, 1), "owner": Agency.HEALTH}),
    "reminder": (messages.reminder_email,
                 {"step": StepId.ACTION, "subject": Subject("a2"), "due": date(2026, 6, 1),
                  "owner": Agency.HEALTH}),
    "overdue": (messages.overdue_email,
                {"step": StepId.SIN_SUBMISSION, "due": date(2026, 3, 6), "owner": Role.LOCAL_AUTHORITY}),
    "escalation": (messages.escalation_email,
                   {"step": StepId.RR_MEETING, "due": date(2026, 3, 6), "on": date(2026, 3, 9)}),
    "rr-information-request": (messages.rr_information_request_email,
                               {"agency": Agency.POLICE, "due": date(2026, 3, 9)}),
    "rr-meeting-invitation": (messages.rr_meeting_invitation_email,
                              {"starts_at": datetime(2026, 3, 12, 10, tzinfo=UTC),
                               "duration": timedelta(hours=2), "place": PLACE,
                               "agencies": [Agency.POLICE], "issued_at": ISSUED, "sequence": 1}),
    "cspr-commissioned": (messages.cspr_commissioned_email,
                          {"commissioned_on": date(2026, 5, 1), "publication_target": date(2026, 11, 2),
                           "by_panel": True}),
    "imr-request": (messages.imr_request_email,
                    {"agency": Agency.HEALTH, "due": date(2026, 6, 1), "sections": SECTIONS}),
    "imr-incomplete": (messages.imr_incomplete_email,
                       {"agency": Agency.HEALTH, "due": date(2026, 6, 8), "missing": SECTIONS[:1]}),
    "action-assigned": (messages.action_assigned_email,
                        {"action": Subject("a1"), "agency": Agency.EDUCATION, "due": date(2026, 9, 1)}),
    "case-closed": (messages.case_closed_email, {"closed_on": date(2027, 1, 4)}),
    "run-repaired-alert": (messages.run_repaired_alert_email,
                           {"process": ProcessName("case"), "loss": RunLoss.FAILED,
                            "replaced": UUID("0b5f2c1e-8f3a-4f7e-9d3c-2a1b0c9d8e7f")}),
}
INJECTION = "\r\nBcc: spy@evil.example"
# The text-bearing arguments beyond case_ref and dashboard_url, with a value carrying a header.
INJECTED: dict[str, tuple[Any, str]] = {
    "place": ("Room 2" + INJECTION, "one printable line"),
    "action": ("a1" + INJECTION, "subject is lowercase"),
    "subject": ("a2" + INJECTION, "subject is lowercase"),
    "sections": (["analysis" + INJECTION], "section's name"),
    "missing": (["analysis" + INJECTION], "section's name"),
    "process": ("case" + INJECTION, "process id"),
}


@pytest.mark.parametrize("event", BUILDERS)
def test_no_argument_can_inject_a_header(directory: Directory, event: str) -> None:
    build, values = BUILDERS[event]
    draft = build(case_ref=REF, directory=directory, dashboard_url=DASHBOARD, **values)
    assert draft.event == event
    assert REF in draft.subject
    assert DASHBOARD in draft.text
    assert "\r" not in draft.subject
    assert "\n" not in draft.subject
    assert set(draft.recipients()) <= {*directory.roles.values(), *directory.agencies.values()}
    with pytest.raises(ValueError, match="case reference"):
        build(case_ref=REF + INJECTION, directory=directory, dashboard_url=DASHBOARD, **values)
    with pytest.raises(ValueError, match="dashboard_url"):
        build(case_ref=REF, directory=directory, dashboard_url=DASHBOARD + INJECTION, **values)
    for name in set(values) & set(INJECTED):
        value, message = INJECTED[name]
        with pytest.raises(ValueError, match=message):
            build(case_ref=REF, directory=directory, dashboard_url=DASHBOARD, **{**values, name: value})


@pytest.mark.parametrize("event", BUILDERS)
def test_html_is_escaped(directory: Directory, event: str) -> None:
    build, values = BUILDERS[event]
    url = "http://127.0.0.1:4200/runs?case=SR-2026-0007&tab=steps"
    draft = build(case_ref=REF, directory=directory, dashboard_url=url, **values)
    assert draft.html is not None
    assert 'href="http://127.0.0.1:4200/runs?case=SR-2026-0007&amp;tab=steps"' in draft.html
    assert "&tab=" not in draft.html
    assert f"Open the case dashboard: {url}" in draft.text


# -- the daily digest ------------------------------------------------------------------------------

DAY = date(2026, 3, 5)  # a Thursday
HORIZON = date(2026, 3, 12)  # five working days on


def _row(case_ref: str, step: str, due: date, *, overdue: bool = False, subject: str | None = None,
         title: str | None = None) -> DigestRow:
    return DigestRow(case_ref=case_ref, step=step, due=due, state=StepState.OPEN, overdue=overdue,
                     subject=subject, title=title)


def _sections(text: str) -> dict[str, list[str]]:
    """The digest's text, as each section's heading and its lines."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line and not line.startswith(" ") and line.endswith(")") and " (" in line:
            current = sections.setdefault(line.rsplit(" (", 1)[0], [])
        elif line.startswith("    ") and current is not None:
            current.append(line.strip())
        elif not line:
            current = None
    return sections


def test_the_digest_puts_each_row_in_its_section_overdue_first(directory: Directory) -> None:
    rows = [
        _row("SR-2026-0004", "sin-submission", date(2026, 3, 12)),               # last day in
        _row("SR-2026-0005", "rr-meeting", date(2026, 3, 13)),                   # beyond the horizon
        _row("SR-2026-0003", "rr-agency-responses", DAY, subject="police"),      # due today
        _row("SR-2026-0002", "action", date(2026, 3, 9), subject="a1"),          # coming
        _row("SR-2026-0001", "rr-meeting", date(2026, 3, 4), overdue=True),      # overdue
        _row("SR-2026-0006", "dsp-decision", date(2026, 3, 3)),                  # past: overdue too
        _row("SR-2026-0007", "toy-review-panel", DAY, overdue=True,
             title="Toy review panel meets"),                                    # a process's own step
    ]
    draft = messages.daily_digest_email(day=DAY, rows=rows, open_cases=7, horizon_end=HORIZON,
                                        directory=directory, dashboard_url=DASHBOARD,
                                        partnership="north-shire")
    assert draft.dedup_key == "daily-digest:north-shire:2026-03-05"
    assert draft.to == (directory.address(Role.SBU),)
    assert draft.subject == ("[SBU] Daily digest for Thursday 5 March 2026: 3 overdue, 1 due today, "
                             "7 open cases")
    assert "Open cases: 7" in draft.text
    sections = _sections(draft.text)
    assert list(sections) == ["Overdue", "Due today", "Due by Thursday 12 March 2026"]
    assert [line.split()[0] for line in sections["Overdue"]] == ["SR-2026-0006", "SR-2026-0001",
                                                                 "SR-2026-0007"]
    assert [line.split()[0] for line in sections["Due today"]] == ["SR-2026-0003"]
    assert [line.split()[0] for line in sections["Due by Thursday 12 March 2026"]] == [
        "SR-2026-0002", "SR-2026-0004"]
    assert "SR-2026-0005" not in draft.text
    assert "1 more item" in draft.text
    today = sections["Due today"][0]
    assert "rr-agency-responses:police" in today
    assert STEP_RULES[StepId.RR_AGENCY_RESPONSES].title in today
    assert today.endswith("due 2026-03-05")
    assert "action:a1" in sections["Due by Thursday 12 March 2026"][0]
    assert "Toy review panel meets" in sections["Overdue"][2]
    assert draft.html is not None
    html = draft.html
    assert html.index("<h3>Overdue (3)</h3>") < html.index("<h3>Due today (1)</h3>") < html.index(
        "<h3>Due by Thursday 12 March 2026 (2)</h3>")
    assert html.index("SR-2026-0001") < html.index("<h3>Due today")
    assert html.index("<h3>Due today") < html.index("SR-2026-0003") < html.index("<h3>Due by")
    assert html.index("<h3>Due by") < html.index("SR-2026-0002") < html.index("SR-2026-0004")


def test_a_digest_with_nothing_due_soon_still_counts_the_open_cases(directory: Directory) -> None:
    draft = messages.daily_digest_email(day=DAY, rows=[], open_cases=1, horizon_end=HORIZON,
                                        directory=directory, dashboard_url=DASHBOARD)
    assert draft.subject.endswith(": 0 overdue, 0 due today, 1 open case")
    assert "Nothing is open." not in draft.text
    assert _sections(draft.text) == {"Overdue": ["None."], "Due today": ["None."],
                                     "Due by Thursday 12 March 2026": ["None."]}


def test_the_digest_refuses_bad_arguments(directory: Directory) -> None:
    common: dict[str, Any] = {"day": DAY, "rows": [], "directory": directory, "dashboard_url": DASHBOARD}
    with pytest.raises(ValueError, match="horizon_end"):
        messages.daily_digest_email(open_cases=0, horizon_end=DAY, **common)
    with pytest.raises(ValueError, match="open_cases"):
        messages.daily_digest_email(open_cases=-1, horizon_end=HORIZON, **common)
    with pytest.raises(ValueError, match="partnership"):
        messages.daily_digest_email(open_cases=0, horizon_end=HORIZON, partnership="north\r\nBcc: x",
                                    **common)


def test_a_digest_row_holds_identifiers_and_a_title_only(directory: Directory) -> None:
    assert _row(REF, "rr-meeting", DAY).step_title == STEP_RULES[StepId.RR_MEETING].title
    assert _row(REF, "cspr-imr", DAY, subject="health").item == "cspr-imr:health"
    # A step given as the procedure's enum is held as a checked step id: the value, not the enum.
    given_as_enum = _row(REF, StepId.RR_MEETING, DAY).step
    assert (type(given_as_enum), given_as_enum) == (StepName, "rr-meeting")
    with pytest.raises(ValidationError, match="needs its title"):
        _row(REF, "toy-review-panel", DAY)
    for step in ("Toy", "toy--step", "toy step", "-toy", "toy\n", "t" * 41):
        with pytest.raises(ValidationError):
            _row(REF, step, DAY, title="A title")
    for subject in ("Police", "a 1", "a1\r\nBcc: x"):
        with pytest.raises(ValidationError):
            _row(REF, "action", DAY, subject=subject)
    for title in ("Two\nlines", "<b>bold</b>", "x" * 101, " leading space"):
        with pytest.raises(ValidationError):
            _row(REF, "toy-step", DAY, title=title)
    # Every title of the procedure's own steps can be carried by a row.
    for rule in STEP_RULES.values():
        assert StepTitle(rule.title) == rule.title
