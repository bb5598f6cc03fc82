"""The reviews run to the end, as pure functions: the Rapid Review's outcome, the National
Panel's response, the CSPR with its IMRs and family engagement, the action plan, and the case's
closure. Every due date is counted here by hand (or, for the long CSPR clocks, by the calendar
from the rule) across the bank holidays of 2026-27.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.alerts import AlertPolicy
from models.calendar import WorkingDayCalendar, london_time
from models.effects import (
    Acted,
    ActionAssignedMail,
    CaseClosedMail,
    CloseCase,
    CompleteItem,
    CsprCommissionedMail,
    Event,
    ImrIncompleteMail,
    ImrRequestMail,
    MeetingInvitationMail,
    Recorded,
    Referred,
    SendEmail,
    StartProcess,
    StoreRecord,
)
from models.enums import (
    AbuseOrNeglect,
    Agency,
    Anchor,
    CasePath,
    CaseStatus,
    Category,
    ReviewRoute,
    Stage,
    StepState,
)
from models.errors import Refused
from models.procedure import Context, Outcome, handle
from models.processes import StepId, build_registry
from models.review_policy import ReviewPolicy
from models.rules import CaseFacts
from models.state import CaseState, DecisionSummary
from models.timetable import Clocks
from tests.conftest import SIGNATURES, STEP_FORMS

CALENDAR = WorkingDayCalendar()
REGISTRY = build_registry()
CLOCKS = Clocks()
AGENCIES = (Agency.POLICE, Agency.HEALTH, Agency.EDUCATION)


def context(day: date) -> Context:
    return Context(now=london_time(day, time(12, 0)), clocks=CLOCKS, calendar=CALENDAR, alerts=AlertPolicy(),
                   registry=REGISTRY, reviews=ReviewPolicy())


class Case:
    """One case in memory, told what happens day by day, as the store would apply it."""

    def __init__(self, *, category: Category = Category.SERIOUS_HARM,
                 referred: date = date(2026, 12, 23)) -> None:
        self.today = referred
        self.state = CaseState(
            case_ref="SR-2026-0007", status=CaseStatus.AWAITING_DECISION, path=None, category=category,
            facts=CaseFacts(category=category, abuse_or_neglect=AbuseOrNeglect.SUSPECTED,
                            looked_after_child=False, care_leaver=False),
            referred_at=datetime(2026, 12, 23, 10, 15, tzinfo=UTC),
            anchors={Anchor.REFERRAL_RECEIVED: referred, Anchor.LA_AWARE: date(2026, 12, 22)},
            steps=(), agencies=AGENCIES)
        self.sent: list[Any] = []
        self.last = self.tell(Referred())

    def tell(self, event: Event) -> Outcome:
        outcome = handle(self.state, event, context(self.today))
        after = self.state.after(outcome.effects)
        if after.decision is not None and not after.decision.recorded_by:
            after = replace(after, decision=DecisionSummary(after.decision.sin, after.decision.rapid_review,
                                                            "an officer"))
        self.state, self.last = after, outcome
        self.sent += [e.mail for e in outcome.effects if isinstance(e, SendEmail)]
        return outcome

    def on(self, day: date) -> Case:
        self.today = day
        return self

    def record(self, step: str, **values: Any) -> Outcome:
        form = STEP_FORMS[StepId(step)].model_validate(values)
        return self.tell(Recorded(step, form))

    def act(self, name: str, **values: Any) -> Outcome:
        act = REGISTRY.act(name)
        assert act is not None
        return self.tell(Acted(name, act.form.model_validate(values)))

    def due(self, step: str, subject: str = "") -> date:
        item = self.state.item(step, subject)
        assert item is not None, f"{step}:{subject} is not open"
        return item.due

    def mails(self, kind: type[Any]) -> list[Any]:
        """The emails of `kind` the last event sent."""
        return [e.mail for e in self.last.effects if isinstance(e, SendEmail) and isinstance(e.mail, kind)]

    def sent_of(self, kind: type[Any]) -> list[Any]:
        """Every email of `kind` sent so far."""
        return [mail for mail in self.sent if isinstance(mail, kind)]

    def decide(self, *, sin: bool = True) -> None:
        self.record(StepId.DSP_DECISION, sin=sin, rapid_review=True, rationale="Criteria met on the facts.",
                    decided_on=self.today, **SIGNATURES)

    def outcome(self, recommendation: ReviewRoute) -> Outcome:
        return self.record(StepId.RR_OUTCOME, immediate_actions="Siblings seen; plan reviewed.",
                           learning="Information was not shared at discharge.",
                           recommendation=recommendation, rationale="Systemic learning across agencies.",
                           decided_on=self.today, **SIGNATURES)


def notified_case() -> Case:
    """Referred Wed 23 Dec 2026 (LA aware Tue 22), decided Thu 24, SIN submitted and the partners
    informed Tue 29 Dec."""
    case = Case()
    case.on(date(2026, 12, 24)).decide()
    case.on(date(2026, 12, 29)).record(StepId.SIN_SUBMISSION, national_ref="CSIN-7",
                                       completed_on=date(2026, 12, 29))
    case.record(StepId.PARTNERS_INFORMED, completed_on=date(2026, 12, 29))
    return case


def held_and_outcome(case: Case, recommendation: ReviewRoute) -> Case:
    for agency in AGENCIES:
        case.on(date(2027, 1, 6)).record(StepId.RR_AGENCY_RESPONSES, agency=agency,
                                         completed_on=date(2027, 1, 6))
    case.on(date(2027, 1, 11)).record(StepId.RR_MEETING, completed_on=date(2027, 1, 11))
    case.on(date(2027, 1, 12)).outcome(recommendation)
    return case


# -- the Rapid Review ------------------------------------------------------------------------------------

def test_the_rapid_review_of_a_notified_case_counts_from_the_sin() -> None:
    case = notified_case()
    # Notified Tue 29 Dec: 30, 31 Dec, [1 Jan], 4, 5, 6 Jan (5) for the agencies; 7, 8, 11 Jan (8)
    # for the meeting; 12..15, 18, 19, 20 Jan (15) for the report to the Panel.
    assert {a: case.due(StepId.RR_AGENCY_RESPONSES, a.value) for a in AGENCIES} == dict.fromkeys(
        AGENCIES, date(2027, 1, 6))
    assert case.due(StepId.RR_MEETING) == date(2027, 1, 11)
    assert case.due(StepId.RR_REPORT_TO_PANEL) == date(2027, 1, 20)
    [invitation] = case.sent_of(MeetingInvitationMail)
    assert (invitation.starts_at, invitation.minutes, invitation.sequence, invitation.agencies) == (
        datetime(2027, 1, 11, 10, 0, tzinfo=UTC), 120, 0, AGENCIES)
    assert case.state.meeting is not None
    assert case.state.meeting.sequence == 0
    assert REGISTRY.stage_of(case.state) is Stage.RAPID_REVIEW


def test_the_meeting_moved_sends_an_update_and_its_timers_follow() -> None:
    case = notified_case()
    case.on(date(2027, 1, 4)).act("rr-meeting-moved", meeting_on=date(2027, 1, 13), start_time="14:30",
                                  place="Town Hall, Room 3", reason="The Panel chair is away on the 11th.")
    [update] = case.mails(MeetingInvitationMail)
    assert (update.starts_at, update.place, update.sequence) == (
        datetime(2027, 1, 13, 14, 30, tzinfo=UTC), "Town Hall, Room 3", 1)
    assert case.due(StepId.RR_MEETING) == date(2027, 1, 13)
    # Re-timed the usual way too (`sbu retime`): the same time and place on the new day, version 2.
    case.tell(replace_event_retime(StepId.RR_MEETING, date(2027, 1, 14)))
    [again] = case.mails(MeetingInvitationMail)
    assert (again.starts_at, again.place, again.sequence) == (
        datetime(2027, 1, 14, 14, 30, tzinfo=UTC), "Town Hall, Room 3", 2)
    with pytest.raises(Refused, match="in the past"):
        case.act("rr-meeting-moved", meeting_on=date(2027, 1, 1), start_time="10:00", place="Online link",
                 reason="A reason long enough.")


def replace_event_retime(step: str, due: date) -> Event:
    from models.effects import Retimed

    return Retimed(step=step, subject="", due=due, reason="The room is not free that day.")


def test_the_meeting_goes_ahead_without_an_agency_and_its_late_information_is_still_taken() -> None:
    case = notified_case()
    for agency in (Agency.POLICE, Agency.HEALTH):
        case.on(date(2027, 1, 6)).record(StepId.RR_AGENCY_RESPONSES, agency=agency,
                                         completed_on=date(2027, 1, 6))
    case.on(date(2027, 1, 11)).record(StepId.RR_MEETING, completed_on=date(2027, 1, 11))
    meeting = case.state.item(StepId.RR_MEETING)
    assert meeting is not None
    assert meeting.details["held_without"] == ["education"]
    assert case.due(StepId.RR_OUTCOME) == date(2027, 1, 12)  # one working day after the meeting
    assert REGISTRY.process("rapid-review").current_wait(case.state).name == "rr-outcome"  # type: ignore[union-attr]
    late = case.on(date(2027, 1, 13)).record(StepId.RR_AGENCY_RESPONSES, agency=Agency.EDUCATION,
                                             completed_on=date(2027, 1, 13))
    assert case.state.state_of(StepId.RR_AGENCY_RESPONSES, "education") is StepState.DONE
    assert next(e for e in late.effects if isinstance(e, CompleteItem)).late


def test_a_local_cspr_recommended_is_commissioned_with_its_clocks() -> None:
    case = held_and_outcome(notified_case(), ReviewRoute.LOCAL_CSPR)
    assert case.state.review is ReviewRoute.LOCAL_CSPR
    assert StartProcess("cspr") in case.last.effects
    [told] = case.mails(CsprCommissionedMail)
    # Commissioned Tue 12 Jan 2027: published six calendar months on, Mon 12 Jul 2027.
    assert (told.commissioned_on, told.publication_target, told.by_panel) == (
        date(2027, 1, 12), date(2027, 7, 12), False)
    assert case.state.anchors[Anchor.PLANNED_PUBLICATION] == date(2027, 7, 12)
    # 13..15, 18..22, 25, 26 Jan (10); 27..29 Jan, 1..5, 8, 9 Feb (20).
    assert case.due(StepId.CSPR_REVIEWER_APPOINTED) == date(2027, 1, 26)
    assert case.due(StepId.CSPR_TERMS_OF_REFERENCE) == date(2027, 2, 9)
    assert case.due(StepId.CSPR_IMR_REQUESTS) == date(2027, 1, 26)
    for step, days in ((StepId.CSPR_FAMILY_ENGAGEMENT, 60), (StepId.CSPR_DRAFT_REPORT, 90),
                       (StepId.CSPR_FINAL_REPORT, 110)):
        assert case.due(step) == CALENDAR.add_working_days(date(2027, 1, 12), days)
    assert case.due(StepId.CSPR_PUBLICATION) == date(2027, 7, 12)
    # The 7th working day strictly before Mon 12 Jul: 9, 8, 7, 6, 5, 2, 1 Jul.
    assert case.due(StepId.CSPR_REPORT_TO_PANEL) == date(2027, 7, 1)
    # The Rapid Review's own action plan: 20 working days after the outcome, Tue 9 Feb.
    assert case.due(StepId.RR_ACTION_PLAN) == date(2027, 2, 9)
    assert REGISTRY.stage_of(case.state) is Stage.CSPR


def test_the_report_to_the_panel_waits_for_the_outcome_and_opens_the_panels_response() -> None:
    case = notified_case()
    with pytest.raises(Refused, match="outcome first"):
        case.on(date(2027, 1, 7)).record(StepId.RR_REPORT_TO_PANEL, completed_on=date(2027, 1, 7))
    held_and_outcome(case, ReviewRoute.NO_CSPR)
    case.on(date(2027, 1, 19)).record(StepId.RR_REPORT_TO_PANEL, completed_on=date(2027, 1, 19),
                                      reference="NP-2027-77")
    # 15 working days after Tue 19 Jan: 20..22, 25..29 Jan, 1..5 Feb, 8, 9 Feb.
    assert case.due(StepId.RR_PANEL_RESPONSE) == date(2027, 2, 9)


def test_the_panel_disagreeing_with_no_cspr_commissions_one() -> None:
    case = held_and_outcome(notified_case(), ReviewRoute.NO_CSPR)
    assert not case.state.started("cspr")
    case.on(date(2027, 1, 19)).record(StepId.RR_REPORT_TO_PANEL, completed_on=date(2027, 1, 19))
    case.on(date(2027, 2, 3)).record(StepId.RR_PANEL_RESPONSE, response="disagree",
                                     completed_on=date(2027, 2, 3))
    assert case.state.review is ReviewRoute.LOCAL_CSPR
    assert case.state.started("cspr")
    [told] = case.mails(CsprCommissionedMail)
    # Commissioned on the Panel's response, Wed 3 Feb: published by Tue 3 Aug 2027.
    assert (told.commissioned_on, told.publication_target, told.by_panel) == (
        date(2027, 2, 3), date(2027, 8, 3), True)
    assert case.due(StepId.CSPR_REVIEWER_APPOINTED) == CALENDAR.add_working_days(date(2027, 2, 3), 10)


def test_a_national_review_stops_a_local_cspr() -> None:
    case = held_and_outcome(notified_case(), ReviewRoute.LOCAL_CSPR)
    case.on(date(2027, 1, 19)).record(StepId.RR_REPORT_TO_PANEL, completed_on=date(2027, 1, 19))
    case.on(date(2027, 2, 3)).record(StepId.RR_PANEL_RESPONSE, response="national-review",
                                     completed_on=date(2027, 2, 3))
    assert case.state.review is ReviewRoute.NATIONAL_REVIEW
    assert not [item for item in case.state.open_steps() if item.process == "cspr"]


def test_only_a_notified_case_can_be_referred_for_a_national_review() -> None:
    case = Case(category=Category.NEAR_MISS)
    case.on(date(2026, 12, 24)).decide(sin=False)
    case.on(date(2027, 1, 18)).record(StepId.RR_MEETING, completed_on=date(2027, 1, 18))
    with pytest.raises(Refused, match="not notified cannot be referred for a national review"):
        case.on(date(2027, 1, 19)).outcome(ReviewRoute.NATIONAL_REVIEW)


def test_a_near_miss_follows_the_same_shape_on_its_longer_clocks_without_the_panel() -> None:
    case = Case(category=Category.NEAR_MISS)
    case.on(date(2026, 12, 24)).decide(sin=False)
    assert case.state.path is CasePath.NEAR_MISS_RAPID_REVIEW
    # Decided Thu 24 Dec: 29..31 Dec, 4..8, 11, 12 Jan (10) for the agencies; 13..15, 18, 19 Jan
    # (the 15th working day) to meet.
    assert case.due(StepId.RR_AGENCY_RESPONSES, "police") == date(2027, 1, 12)
    assert case.due(StepId.RR_MEETING) == date(2027, 1, 19)
    assert case.state.item(StepId.RR_REPORT_TO_PANEL) is None  # nothing goes to the Panel
    case.on(date(2027, 1, 19)).record(StepId.RR_MEETING, completed_on=date(2027, 1, 19))
    case.on(date(2027, 1, 20)).outcome(ReviewRoute.NO_CSPR)
    assert case.state.item(StepId.RR_PANEL_RESPONSE) is None
    # 20 working days after Wed 20 Jan: 21, 22, 25..29 Jan, 1..5, 8..12, 15..17 Feb.
    assert case.due(StepId.RR_ACTION_PLAN) == date(2027, 2, 17)


# -- IMRs, family engagement, publication --------------------------------------------------------------

def cspr_case() -> Case:
    return held_and_outcome(notified_case(), ReviewRoute.LOCAL_CSPR)


def test_imrs_are_requested_by_the_panels_date_and_checked_section_by_section() -> None:
    case = cspr_case()
    case.on(date(2027, 1, 20)).record(StepId.CSPR_IMR_REQUESTS, completed_on=date(2027, 1, 20),
                                      imrs_due=date(2027, 2, 26))
    assert {a: case.due(StepId.CSPR_IMR, a.value) for a in AGENCIES} == dict.fromkeys(AGENCIES,
                                                                                       date(2027, 2, 26))
    requests = case.mails(ImrRequestMail)
    assert [(m.agency, m.due) for m in requests] == [(a, date(2027, 2, 26)) for a in AGENCIES]
    assert requests[0].sections == ReviewPolicy().imr_sections

    case.on(date(2027, 2, 15)).record(StepId.CSPR_IMR, agency="police", completed_on=date(2027, 2, 15))
    police = case.state.item(StepId.CSPR_IMR, "police")
    assert police is not None
    assert police.state is StepState.DONE
    assert set(police.details["sections"].values()) == {"present"}

    # Health's IMR lacks two sections: flagged section by section, chased for the rest within 5
    # working days (16 Feb: 17, 18, 19, 22, 23 Feb).
    case.on(date(2027, 2, 16)).record(StepId.CSPR_IMR, agency="health", completed_on=date(2027, 2, 16),
                                      missing_sections=["chronology", "lessons-learned"])
    health = case.state.item(StepId.CSPR_IMR, "health")
    assert health is not None
    assert health.is_open
    assert health.details["sections"]["chronology"] == "missing"
    assert health.details["sections"]["good-practice"] == "present"
    assert health.due == date(2027, 2, 23)
    [chase] = case.mails(ImrIncompleteMail)
    assert (chase.agency, chase.due, chase.missing) == (Agency.HEALTH, date(2027, 2, 23),
                                                        ("chronology", "lessons-learned"))
    with pytest.raises(Refused, match="not a section of the partnership's IMR template"):
        case.record(StepId.CSPR_IMR, agency="health", completed_on=date(2027, 2, 16),
                    missing_sections=["x-ray"])
    case.on(date(2027, 2, 22)).record(StepId.CSPR_IMR, agency="health", completed_on=date(2027, 2, 22))
    assert case.state.state_of(StepId.CSPR_IMR, "health") is StepState.DONE


def test_the_report_to_the_panel_follows_the_planned_publication_date() -> None:
    case = cspr_case()
    case.on(date(2027, 3, 1)).act("cspr-publication-moved", planned_on=date(2027, 6, 30),
                                  reason="The coroner's inquest is on the 5th of July.")
    # The 7th working day strictly before Wed 30 Jun: 29, 28, 25, 24, 23, 22, 21 Jun.
    assert case.due(StepId.CSPR_REPORT_TO_PANEL) == date(2027, 6, 21)
    assert case.due(StepId.CSPR_PUBLICATION) == date(2027, 7, 12)  # the target stays six months on
    case.on(date(2027, 6, 18)).record(StepId.CSPR_REPORT_TO_PANEL, completed_on=date(2027, 6, 18))
    assert case.state.state_of(StepId.CSPR_REPORT_TO_PANEL) is StepState.DONE


def test_family_engagement_is_recorded_with_its_reason_kept_in_the_store_only() -> None:
    case = cspr_case()
    outcome = case.on(date(2027, 3, 1)).record(StepId.CSPR_FAMILY_ENGAGEMENT, engagement="declined",
                                               reason="The mother asked not to be contacted.",
                                               completed_on=date(2027, 3, 1))
    item = case.state.item(StepId.CSPR_FAMILY_ENGAGEMENT)
    assert item is not None
    assert item.details == {"engagement": "declined"}
    [stored] = [e for e in outcome.effects if isinstance(e, StoreRecord)]
    assert stored.values["reason"] == "The mother asked not to be contacted."


# -- the action plan and closure ---------------------------------------------------------------------------

def test_a_case_closes_only_when_its_last_action_closes() -> None:
    case = held_and_outcome(notified_case(), ReviewRoute.NO_CSPR)
    with pytest.raises(Refused, match="no CSPR for an action"):
        case.on(date(2027, 1, 13)).act("action-added", source="cspr", agency="health",
                                       owner_role="Named Nurse", summary="Audit discharge planning.",
                                       due=date(2027, 3, 31))
    case.act("action-added", source="rapid-review", agency="health", owner_role="Named Nurse",
             summary="Audit discharge planning.", due=date(2027, 3, 31))
    [assigned] = case.mails(ActionAssignedMail)
    assert (assigned.action, assigned.agency, assigned.due) == ("a1", Agency.HEALTH, date(2027, 3, 31))
    assert case.state.started("action-plan")
    case.act("action-added", source="rapid-review", agency="police", owner_role="Detective Inspector",
             summary="Brief the team on referral thresholds.", due=date(2027, 2, 26))
    assert case.due(StepId.ACTION, "a2") == date(2027, 2, 26)
    case.act("action-progress", action="a1", note="Audit scoped.", evidence_ref="AUD-1",
             noted_on=date(2027, 1, 13))
    assert case.state.item(StepId.ACTION, "a1").details["notes"] == 1  # type: ignore[union-attr]

    case.on(date(2027, 1, 19)).record(StepId.RR_REPORT_TO_PANEL, completed_on=date(2027, 1, 19))
    case.on(date(2027, 2, 3)).record(StepId.RR_PANEL_RESPONSE, response="agree",
                                     completed_on=date(2027, 2, 3))
    case.record(StepId.RR_ACTION_PLAN, completed_on=date(2027, 2, 3))
    case.on(date(2027, 2, 20)).record(StepId.ACTION, action="a2", evidence_ref="BRIEF-9",
                                      completed_on=date(2027, 2, 20))
    assert (case.state.status, REGISTRY.stage_of(case.state)) == (CaseStatus.IN_PROGRESS,
                                                                   Stage.ACTION_PLAN)
    closing = case.on(date(2027, 3, 30)).record(StepId.ACTION, action="a1", evidence_ref="AUD-1-FINAL",
                                                completed_on=date(2027, 3, 30))
    assert [e for e in closing.effects if isinstance(e, CloseCase)] == [
        CloseCase("the reviews are done and every action of their plans is closed")]
    assert case.mails(CaseClosedMail)
    assert (case.state.status, REGISTRY.stage_of(case.state)) == (CaseStatus.CLOSED, Stage.CLOSED)
    with pytest.raises(Refused, match="is closed"):
        case.act("action-added", source="rapid-review", agency="health", owner_role="Named Nurse",
                 summary="Too late.", due=date(2027, 4, 30))


def test_an_action_due_in_the_past_or_unknown_is_refused() -> None:
    case = held_and_outcome(notified_case(), ReviewRoute.NO_CSPR)
    with pytest.raises(Refused, match="due is in the past"):
        case.on(date(2027, 1, 13)).act("action-added", source="rapid-review", agency="health",
                                       owner_role="Named Nurse", summary="Audit.", due=date(2027, 1, 1))
    with pytest.raises(Refused, match="no open action a7"):
        case.act("action-progress", action="a7", note="No such action.", noted_on=date(2027, 1, 13))


# -- the CSPR's clocks, for every date -------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(commissioned=st.dates(min_value=date(2026, 1, 1), max_value=date(2035, 12, 31)),
       planned_offset=st.integers(min_value=20, max_value=400))
def test_for_every_commissioning_date_the_report_precedes_publication_by_seven_working_days(
        commissioned: date, planned_offset: int) -> None:
    from datetime import timedelta

    from models.processes.cspr import commission

    case = Case()
    case.state = replace(case.state, path=CasePath.SIN_AND_RAPID_REVIEW, status=CaseStatus.IN_PROGRESS,
                         decision=DecisionSummary(True, True, "an officer"))
    case.today = commissioned
    effects = commission(case.state, on=commissioned, by_panel=False, ctx=context(commissioned))
    case.state = case.state.after(effects)
    settled = handle(case.state, Referred(), context(commissioned))
    case.state = case.state.after(settled.effects)
    target = case.due(StepId.CSPR_PUBLICATION)
    # Six calendar months on, the day clamped to the month's end.
    months = commissioned.month + 6
    year, month = commissioned.year + (months - 1) // 12, (months - 1) % 12 + 1
    assert (target.year, target.month) == (year, month)
    assert target.day == commissioned.day or (target + timedelta(days=1)).day == 1
    planned = commissioned + timedelta(days=planned_offset)
    case.on(commissioned).act("cspr-publication-moved", planned_on=planned,
                              reason="Moved for the test's sake.")
    report = case.due(StepId.CSPR_REPORT_TO_PANEL)
    assert CALENDAR.is_working_day(report)
    assert report < planned
    # Exactly seven working days in [report, planned): the report is the 7th working day before it.
    days = (report + timedelta(days=n) for n in range((planned - report).days))
    assert sum(1 for day in days if CALENDAR.is_working_day(day)) == 7


def test_a_date_the_panel_set_stays_when_the_request_date_moves() -> None:
    from models.effects import AnchorMoved

    case = cspr_case()
    case.on(date(2027, 1, 20)).record(StepId.CSPR_IMR_REQUESTS, completed_on=date(2027, 1, 20),
                                      imrs_due=date(2027, 2, 26), agencies=["police"])
    case.tell(AnchorMoved(Anchor.IMRS_REQUESTED, date(2027, 1, 21), "Requests went out a day later."))
    assert case.due(StepId.CSPR_IMR, "police") == date(2027, 2, 26)
    assert case.state.item(StepId.CSPR_IMR, "health") is None  # only the agencies asked
