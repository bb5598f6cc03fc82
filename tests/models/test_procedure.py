"""The procedure engine as a pure function: a case and an event in, effects out.

Every test builds a case in memory, tells the engine what happened, and reads the effects, or the
case as they would leave it (`CaseState.after`). No store, no clock, no Prefect.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.alerts import AlertPolicy
from models.calendar import WorkingDayCalendar, london_date
from models.effects import (
    AlertSent,
    AlertSuperseded,
    AnchorMoved,
    CancelAlerts,
    CaseClosedMail,
    CloseCase,
    CompleteItem,
    DecisionRecordedMail,
    DropAlert,
    DueTimer,
    Effect,
    EscalationMail,
    InformationRequestMail,
    MeetingInvitationMail,
    OpenItem,
    OverdueMail,
    Recorded,
    ReferralReceivedMail,
    Referred,
    Retimed,
    RetimeItem,
    ScheduleAlert,
    SendEmail,
    StartProcess,
    StepOpenedMail,
    TimersDue,
)
from models.enums import (
    AbuseOrNeglect,
    Agency,
    Anchor,
    CasePath,
    CaseStatus,
    Category,
    StepState,
    TimerKind,
)
from models.errors import Refused
from models.forms import (
    AgencyResponseForm,
    DspDecisionForm,
    PartnersInformedForm,
    SinSubmissionForm,
    StepCompletionForm,
)
from models.procedure import Context, Outcome, handle
from models.processes import StepId, build_registry
from models.review_policy import ReviewPolicy
from models.rules import CaseFacts, case_path, dsp_decision_refusals
from models.state import CaseState, DecisionSummary
from models.timetable import Clocks
from tests.conftest import SIGNATURES

CALENDAR = WorkingDayCalendar()
REGISTRY = build_registry()
# Wednesday 23 December 2026, noon: the example referral's afternoon.
NOW = datetime(2026, 12, 23, 12, 0, tzinfo=UTC)
DAY = date(2026, 12, 23)


def context(now: datetime = NOW) -> Context:
    return Context(now=now, clocks=Clocks(), calendar=CALENDAR, alerts=AlertPolicy(), registry=REGISTRY,
                   reviews=ReviewPolicy())


def new_case(*, category: Category = Category.SERIOUS_HARM,
             abuse: AbuseOrNeglect = AbuseOrNeglect.SUSPECTED, looked_after: bool = False,
             care_leaver: bool = False,
             agencies: tuple[Agency, ...] = (Agency.POLICE, Agency.HEALTH)) -> CaseState:
    """A case as the store holds it the moment it is referred, before the procedure has spoken."""
    return CaseState(
        case_ref="SR-2026-0001", status=CaseStatus.AWAITING_DECISION, path=None, category=category,
        facts=CaseFacts(category=category, abuse_or_neglect=abuse, looked_after_child=looked_after,
                        care_leaver=care_leaver),
        referred_at=datetime(2026, 12, 23, 10, 15, tzinfo=UTC),
        anchors={Anchor.REFERRAL_RECEIVED: DAY, Anchor.LA_AWARE: date(2026, 12, 22)},
        steps=(), agencies=agencies)


def referred(**facts: Any) -> CaseState:
    state = new_case(**facts)
    return state.after(handle(state, Referred(), context()).effects)


def decision(*, sin: bool, rapid_review: bool, on: date = DAY) -> DspDecisionForm:
    return DspDecisionForm.model_validate({"sin": sin, "rapid_review": rapid_review,
                                           "rationale": "Criteria met on the facts.", **SIGNATURES,
                                           "decided_on": on})


def follow(state: CaseState, outcome: Outcome) -> CaseState:
    after = state.after(outcome.effects)
    # What the store would write for the decision's author.
    if after.decision is not None and not after.decision.recorded_by:
        after = replace(after, decision=DecisionSummary(after.decision.sin, after.decision.rapid_review,
                                                        "an officer"))
    return after


def of_type(effects: tuple[Effect, ...], kind: type[Any]) -> list[Any]:
    return [effect for effect in effects if isinstance(effect, kind)]


def mails(effects: tuple[Effect, ...]) -> list[Any]:
    return [effect.mail for effect in of_type(effects, SendEmail)]


# -- referral -----------------------------------------------------------------------------------------

def test_a_referral_starts_the_case_and_opens_the_dsp_decision() -> None:
    state = new_case()
    outcome = handle(state, Referred(), context())
    assert of_type(outcome.effects, StartProcess) == [StartProcess("case")]
    [opened] = of_type(outcome.effects, OpenItem)
    assert (opened.step, opened.due, opened.process) == (StepId.DSP_DECISION, date(2026, 12, 24), "case")
    assert {alert.kind for alert in of_type(outcome.effects, ScheduleAlert)} == {
        TimerKind.OVERDUE, TimerKind.ESCALATION}  # the reminder's time (today 09:00) has passed
    [mail] = mails(outcome.effects)
    assert isinstance(mail, ReferralReceivedMail)
    assert mail.due_at == datetime(2026, 12, 25, 0, 0, tzinfo=UTC)  # the end of Thu 24 Dec, London


# -- the DSP decision ------------------------------------------------------------------------------------

def test_a_sin_decision_opens_the_notification_steps_and_no_rapid_review_yet() -> None:
    state = referred()
    outcome = handle(state, Recorded(StepId.DSP_DECISION, decision(sin=True, rapid_review=True)), context())
    opened = {e.step: e.due for e in of_type(outcome.effects, OpenItem)}
    assert opened == {StepId.SIN_SUBMISSION: date(2026, 12, 31), StepId.PARTNERS_INFORMED: date(2026, 12, 31)}
    assert of_type(outcome.effects, StartProcess) == []
    after = follow(state, outcome)
    assert (after.path, after.status) == (CasePath.SIN_AND_RAPID_REVIEW, CaseStatus.IN_PROGRESS)
    assert after.state_of(StepId.DSP_DECISION) is StepState.DONE
    assert after.anchors[Anchor.DECISION] == DAY
    assert [type(m) for m in mails(outcome.effects)] == [DecisionRecordedMail, StepOpenedMail, StepOpenedMail]


def test_a_rapid_review_without_a_sin_starts_at_the_decision() -> None:
    state = referred(category=Category.NEAR_MISS)
    outcome = handle(state, Recorded(StepId.DSP_DECISION, decision(sin=False, rapid_review=True)), context())
    assert of_type(outcome.effects, StartProcess) == [StartProcess("rapid-review")]
    opened = {(e.step, e.subject): (e.due, e.agency) for e in of_type(outcome.effects, OpenItem)}
    # Near miss, decided Wed 23 Dec: 10 working days to 11 Jan, the meeting on the 15th (18 Jan);
    # each agency's information is an item of its own, owed by the agency.
    assert opened == {(StepId.RR_AGENCY_RESPONSES, "police"): (date(2027, 1, 11), Agency.POLICE),
                      (StepId.RR_AGENCY_RESPONSES, "health"): (date(2027, 1, 11), Agency.HEALTH),
                      (StepId.RR_MEETING, ""): (date(2027, 1, 18), None)}
    requests = [m for m in mails(outcome.effects) if isinstance(m, InformationRequestMail)]
    assert [(m.agency, m.due) for m in requests] == [(Agency.POLICE, date(2027, 1, 11)),
                                                      (Agency.HEALTH, date(2027, 1, 11))]
    # The meeting is set for 10:00 London time on its day, and everyone is invited.
    [invitation] = [m for m in mails(outcome.effects) if isinstance(m, MeetingInvitationMail)]
    assert (invitation.starts_at, invitation.sequence) == (datetime(2027, 1, 18, 10, 0, tzinfo=UTC), 0)


def test_no_further_action_closes_the_case() -> None:
    state = referred(abuse=AbuseOrNeglect.NOT_SUSPECTED)
    outcome = handle(state, Recorded(StepId.DSP_DECISION, decision(sin=False, rapid_review=False)), context())
    assert of_type(outcome.effects, CloseCase) == [CloseCase("no further action (DSP decision)")]
    assert follow(state, outcome).status is CaseStatus.CLOSED


def test_a_decision_the_procedure_forbids_is_refused_with_its_reason() -> None:
    state = referred(category=Category.DEATH, abuse=AbuseOrNeglect.NOT_SUSPECTED, looked_after=True)
    with pytest.raises(Refused, match="looked-after child must always be notified"):
        handle(state, Recorded(StepId.DSP_DECISION, decision(sin=False, rapid_review=False)), context())


def test_the_same_decision_again_is_already_recorded_and_another_is_refused() -> None:
    state = referred()
    state = follow(state, handle(state, Recorded(StepId.DSP_DECISION, decision(sin=True, rapid_review=True)),
                                 context()))
    again = handle(state, Recorded(StepId.DSP_DECISION, decision(sin=True, rapid_review=True)), context())
    assert again.already_recorded
    assert again.effects == ()
    with pytest.raises(Refused, match="already has a DSP decision"):
        handle(state, Recorded(StepId.DSP_DECISION, decision(sin=False, rapid_review=False)), context())


def test_a_decision_dated_in_the_future_or_before_the_referral_is_refused() -> None:
    state = referred()
    with pytest.raises(Refused, match="decided_on is in the future"):
        handle(state, Recorded(StepId.DSP_DECISION, decision(sin=True, rapid_review=True,
                                                             on=date(2026, 12, 24))), context())
    with pytest.raises(Refused, match="before the step's clock started"):
        handle(state, Recorded(StepId.DSP_DECISION, decision(sin=True, rapid_review=True,
                                                             on=date(2026, 12, 22))), context())


# -- the SIN and the Rapid Review ----------------------------------------------------------------------

def notified(*, on: date = DAY, **facts: Any) -> CaseState:
    state = referred(**facts)
    state = follow(state, handle(state, Recorded(StepId.DSP_DECISION, decision(sin=True, rapid_review=True)),
                                 context()))
    return follow(state, handle(state, Recorded(StepId.SIN_SUBMISSION,
                                                SinSubmissionForm(national_ref="CSIN-1", completed_on=on)),
                                context()))


def test_the_sins_submission_starts_the_rapid_review_counted_from_it() -> None:
    state = notified()
    assert state.started("rapid-review")
    due = {item.label: item.due for item in state.steps if item.process == "rapid-review"}
    # Notified Wed 23 Dec: 24, 29, 30, 31 Dec, 4 Jan; the meeting on the 8th working day (7 Jan);
    # the Panel's 15th working day is 18 Jan (25, 28 Dec and 1 Jan are bank holidays).
    assert due == {"rr-agency-responses:police": date(2027, 1, 4),
                   "rr-agency-responses:health": date(2027, 1, 4),
                   StepId.RR_MEETING: date(2027, 1, 7), StepId.RR_REPORT_TO_PANEL: date(2027, 1, 18)}
    assert state.anchors[Anchor.SIN_SUBMITTED] == state.anchors[Anchor.NOTIFICATION] == DAY


def test_each_agencys_information_is_an_item_of_its_own() -> None:
    state = notified()
    first = handle(state, Recorded(StepId.RR_AGENCY_RESPONSES,
                                   AgencyResponseForm(agency=Agency.POLICE, completed_on=DAY)), context())
    [done] = of_type(first.effects, CompleteItem)
    assert (done.step, done.subject, done.late) == (StepId.RR_AGENCY_RESPONSES, "police", False)
    assert CancelAlerts(StepId.RR_AGENCY_RESPONSES, "police") in first.effects
    state = follow(state, first)
    assert state.state_of(StepId.RR_AGENCY_RESPONSES, "health") is StepState.OPEN
    again = handle(state, Recorded(StepId.RR_AGENCY_RESPONSES,
                                   AgencyResponseForm(agency=Agency.POLICE, completed_on=DAY)), context())
    assert again.already_recorded
    with pytest.raises(Refused, match="not waiting for rr-agency-responses"):
        handle(state, Recorded(StepId.RR_AGENCY_RESPONSES,
                               AgencyResponseForm(agency=Agency.EDUCATION, completed_on=DAY)), context())


def test_a_sin_only_case_closes_once_notified_and_the_partners_informed() -> None:
    state = referred(category=Category.DEATH, abuse=AbuseOrNeglect.NOT_SUSPECTED, looked_after=True)
    state = follow(state, handle(state, Recorded(StepId.DSP_DECISION, decision(sin=True, rapid_review=False)),
                                 context()))
    state = follow(state, handle(state, Recorded(StepId.SIN_SUBMISSION,
                                                 SinSubmissionForm(national_ref="CSIN-1", completed_on=DAY)),
                                 context()))
    assert not state.started("rapid-review")
    assert state.status is CaseStatus.IN_PROGRESS
    outcome = handle(state, Recorded(StepId.PARTNERS_INFORMED, PartnersInformedForm(completed_on=DAY)),
                     context())
    assert of_type(outcome.effects, CloseCase) == [CloseCase("notified; no Rapid Review required")]
    assert [type(m) for m in mails(outcome.effects)] == [CaseClosedMail]


def test_a_step_the_case_does_not_wait_for_is_refused() -> None:
    state = referred()
    with pytest.raises(Refused, match=r"not waiting for sin-submission \(open steps: dsp-decision"):
        handle(state, Recorded(StepId.SIN_SUBMISSION, SinSubmissionForm(national_ref="X", completed_on=DAY)),
               context())
    with pytest.raises(Refused, match="not waiting for cspr-draft-report"):
        handle(state, Recorded(StepId.CSPR_DRAFT_REPORT, StepCompletionForm(completed_on=DAY)), context())


# -- timers ----------------------------------------------------------------------------------------------

DueAt = tuple[int, StepId, TimerKind, int, datetime]


def due(*timers: DueAt, subject: str = "") -> TimersDue:
    return TimersDue(tuple(DueTimer(id=id_, step=step, subject=subject, kind=kind, sequence=seq, fire_at=at)
                           for id_, step, kind, seq, at in timers))


# The DSP decision of the example referral, due by the end of Thursday 24 December 2026: its
# reminder, its overdue alert and its first escalation (Christmas and Boxing Day are holidays).
DSP_TIMERS: tuple[DueAt, ...] = (
    (1, StepId.DSP_DECISION, TimerKind.REMINDER, 0, datetime(2026, 12, 23, 9, tzinfo=UTC)),
    (2, StepId.DSP_DECISION, TimerKind.OVERDUE, 0, datetime(2026, 12, 25, 0, 1, tzinfo=UTC)),
    (3, StepId.DSP_DECISION, TimerKind.ESCALATION, 1, datetime(2026, 12, 29, 9, tzinfo=UTC)))
DSP_DUE = date(2026, 12, 24)


def test_an_escalation_goes_out_and_schedules_the_next_working_days() -> None:
    state = referred()  # the DSP decision is due by the end of Thursday 24 December
    fired = handle(state, due((7, StepId.DSP_DECISION, TimerKind.ESCALATION, 1,
                               datetime(2026, 12, 29, 9, 0, tzinfo=UTC))),
                   context(datetime(2026, 12, 29, 9, 0, 5, tzinfo=UTC)))
    assert fired.fired
    [mail] = mails(fired.effects)
    assert isinstance(mail, EscalationMail)
    assert mail.on == date(2026, 12, 29)
    # Christmas Day and Boxing Day (a Monday in lieu, 28 December) are not working days.
    assert [(item.rule.step, item.due, item.working_days_late) for item in mail.items] == [
        (StepId.DSP_DECISION, date(2026, 12, 24), 1)]
    assert AlertSent(7, StepId.DSP_DECISION, "", TimerKind.ESCALATION, DSP_DUE, 1) in fired.effects
    [nxt] = of_type(fired.effects, ScheduleAlert)
    assert (nxt.sequence, nxt.fire_at) == (2, datetime(2026, 12, 30, 9, 0, tzinfo=UTC))


def test_a_timer_for_a_done_step_sends_nothing() -> None:
    state = notified()
    outcome = handle(state, due((3, StepId.DSP_DECISION, TimerKind.OVERDUE, 0, NOW)), context())
    assert (outcome.fired, outcome.effects) == (False, (DropAlert(3),))
    assert outcome.reason == "0 sent, 0 superseded, 1 dropped"


def test_alerts_due_together_collapse_to_the_latest_which_says_how_late_the_item_is() -> None:
    """After an outage a pass finds the reminder, the overdue alert and the first escalation of
    one item due at once: only the escalation goes out, the others are recorded as superseded,
    and the next escalation is planned from today, not from the day the first was planned for."""
    state = referred()  # the DSP decision is due by the end of Thursday 24 December
    today = datetime(2027, 1, 6, 10, 0, tzinfo=UTC)  # a Wednesday: 6 working days late
    outcome = handle(state, due(*DSP_TIMERS), context(today))
    [mail] = mails(outcome.effects)
    assert isinstance(mail, EscalationMail)
    assert (mail.on, [item.working_days_late for item in mail.items]) == (date(2027, 1, 6), [6])
    assert of_type(outcome.effects, AlertSuperseded) == [
        AlertSuperseded(1, StepId.DSP_DECISION, "", TimerKind.REMINDER, DSP_DUE, 0, TimerKind.ESCALATION),
        AlertSuperseded(2, StepId.DSP_DECISION, "", TimerKind.OVERDUE, DSP_DUE, 0, TimerKind.ESCALATION)]
    assert [sent.timer for sent in of_type(outcome.effects, AlertSent)] == [3]
    [nxt] = of_type(outcome.effects, ScheduleAlert)
    assert (nxt.kind, nxt.sequence) == (TimerKind.ESCALATION, 2)
    assert nxt.fire_at == datetime(2027, 1, 7, 9, tzinfo=UTC)
    assert outcome.reason == "1 sent, 2 superseded, 0 dropped"


def test_a_late_overdue_alert_says_how_late_and_plans_nothing() -> None:
    state = referred()
    sunday = datetime(2026, 12, 27, 12, 0, tzinfo=UTC)
    outcome = handle(state, due(*DSP_TIMERS[:2]), context(sunday))
    [mail] = mails(outcome.effects)
    assert isinstance(mail, OverdueMail)
    assert (mail.on, mail.working_days_late) == (date(2026, 12, 27), 0)
    assert [s.kind for s in of_type(outcome.effects, AlertSuperseded)] == [TimerKind.REMINDER]
    # The first escalation was planned with the item: nothing more is planned until it goes.
    assert of_type(outcome.effects, ScheduleAlert) == []


def test_a_cases_escalations_go_as_one_email_listing_every_item_after_its_owners_alerts() -> None:
    state = referred()
    state = follow(state, handle(state, Recorded(StepId.DSP_DECISION, decision(sin=True, rapid_review=True)),
                                 context()))
    nine = datetime(2027, 1, 4, 9, tzinfo=UTC)
    now = context(datetime(2027, 1, 4, 9, 0, 5, tzinfo=UTC))
    outcome = handle(state, due((1, StepId.SIN_SUBMISSION, TimerKind.ESCALATION, 2, nine),
                                (2, StepId.PARTNERS_INFORMED, TimerKind.ESCALATION, 2, nine),
                                (3, StepId.DSP_DECISION, TimerKind.ESCALATION, 4, nine)), now)
    [mail] = mails(outcome.effects)
    assert isinstance(mail, EscalationMail)
    assert [item.rule.step for item in mail.items] == [StepId.SIN_SUBMISSION, StepId.PARTNERS_INFORMED]
    assert [sent.timer for sent in of_type(outcome.effects, AlertSent)] == [1, 2]
    assert of_type(outcome.effects, DropAlert) == [DropAlert(3)]  # the decision is recorded
    assert {(s.step, s.sequence) for s in of_type(outcome.effects, ScheduleAlert)} == {
        (StepId.SIN_SUBMISSION, 3), (StepId.PARTNERS_INFORMED, 3)}
    # The emails go in the order their alerts came due: an overdue alert at midnight, then the
    # escalation at 09:00, whichever item each is about.
    outcome = handle(state, due((1, StepId.SIN_SUBMISSION, TimerKind.ESCALATION, 2, nine),
                                (2, StepId.PARTNERS_INFORMED, TimerKind.OVERDUE, 0,
                                 datetime(2027, 1, 4, 0, 1, tzinfo=UTC))), now)
    assert [type(mail) for mail in mails(outcome.effects)] == [OverdueMail, EscalationMail]


@settings(max_examples=60, deadline=None)
@given(outage=st.integers(min_value=0, max_value=40), kinds=st.integers(min_value=1, max_value=3))
def test_one_pass_sends_one_alert_an_item_and_plans_the_next_escalation_after_today(outage: int,
                                                                                   kinds: int) -> None:
    state = referred()
    planned = DSP_TIMERS[:kinds]
    now = planned[-1][4] + timedelta(days=outage, minutes=1)
    outcome = handle(state, due(*planned), context(now))
    assert len(of_type(outcome.effects, AlertSent)) == 1 == len(mails(outcome.effects))
    assert len(of_type(outcome.effects, AlertSuperseded)) == kinds - 1
    for nxt in of_type(outcome.effects, ScheduleAlert):
        assert london_date(nxt.fire_at) > london_date(now)
        assert CALENDAR.is_working_day(london_date(nxt.fire_at))


# -- moving dates ------------------------------------------------------------------------------------------

def test_a_retimed_item_gets_new_timers_for_its_new_date() -> None:
    state = notified()
    outcome = handle(state, Retimed(StepId.RR_MEETING, "", date(2027, 1, 12), "Panel chair away"), context())
    [retimed] = of_type(outcome.effects, RetimeItem)
    assert (retimed.due, retimed.was) == (date(2027, 1, 12), date(2027, 1, 7))
    assert retimed.reason == "Panel chair away"
    assert "Panel chair" not in retimed.rule  # the reason stays in the audit trail, never in the rule text
    assert CancelAlerts(StepId.RR_MEETING, "") in outcome.effects
    assert {a.due for a in of_type(outcome.effects, ScheduleAlert)} == {date(2027, 1, 12)}
    assert follow(state, outcome).item(StepId.RR_MEETING).due == date(2027, 1, 12)  # type: ignore[union-attr]


def test_only_an_open_item_can_be_retimed_and_never_into_the_past() -> None:
    state = notified()
    with pytest.raises(Refused, match="no open dsp-decision to re-time"):
        handle(state, Retimed(StepId.DSP_DECISION, "", date(2027, 1, 12), "A reason given"), context())
    with pytest.raises(Refused, match="in the past"):
        handle(state, Retimed(StepId.RR_MEETING, "", date(2026, 12, 1), "A reason given"), context())


def test_moving_an_anchor_retimes_every_open_item_counted_from_it() -> None:
    state = notified()
    outcome = handle(state, AnchorMoved(Anchor.NOTIFICATION, date(2026, 12, 29), "Corrected date"), context())
    moved = {(e.step, e.subject): e.due for e in of_type(outcome.effects, RetimeItem)}
    # Notified Tue 29 Dec: 30, 31 Dec, 4, 5, 6 Jan; the meeting on the 8th working day, 11 Jan.
    assert moved == {(StepId.RR_AGENCY_RESPONSES, "police"): date(2027, 1, 6),
                     (StepId.RR_AGENCY_RESPONSES, "health"): date(2027, 1, 6),
                     (StepId.RR_MEETING, ""): date(2027, 1, 11)}
    # The meeting moves with it, at the same time of day: an update to the same invitation.
    [update] = [m for m in mails(outcome.effects) if isinstance(m, MeetingInvitationMail)]
    assert (update.starts_at, update.sequence) == (datetime(2027, 1, 11, 10, 0, tzinfo=UTC), 1)
    after = follow(state, outcome)
    assert after.anchors[Anchor.NOTIFICATION] == date(2026, 12, 29)
    assert after.item(StepId.RR_MEETING).anchor_on == date(2026, 12, 29)  # type: ignore[union-attr]


# -- for every referral and every decision -------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(category=st.sampled_from(Category), abuse=st.sampled_from(AbuseOrNeglect),
       status=st.sampled_from(["none", "looked-after", "care-leaver"]), sin=st.booleans(),
       rapid_review=st.booleans())
def test_every_allowed_decision_sets_the_rules_path_and_every_open_item_is_timed(
        category: Category, abuse: AbuseOrNeglect, status: str, sin: bool, rapid_review: bool) -> None:
    facts = {"category": category, "abuse": abuse, "looked_after": status == "looked-after",
             "care_leaver": status == "care-leaver"}
    state = referred(**facts)
    event = Recorded(StepId.DSP_DECISION, decision(sin=sin, rapid_review=rapid_review))
    if dsp_decision_refusals(state.facts, sin=sin, rapid_review=rapid_review):
        with pytest.raises(Refused):
            handle(state, event, context())
        return
    outcome = handle(state, event, context())
    after = follow(state, outcome)
    path = case_path(state.facts, sin=sin, rapid_review=rapid_review)
    assert after.path is path
    assert (after.status is CaseStatus.CLOSED) == (path is CasePath.NO_FURTHER_ACTION)
    without_sin = (CasePath.RAPID_REVIEW_ONLY, CasePath.NEAR_MISS_RAPID_REVIEW)
    assert after.started("rapid-review") == (path in without_sin)
    timed = {(e.step, e.subject) for e in of_type(outcome.effects, ScheduleAlert)}
    for item in after.open_steps():
        if item.step != StepId.DSP_DECISION:
            assert (item.step, item.subject) in timed
            assert item.due > DAY
            assert CALENDAR.is_working_day(item.due)


def test_a_person_set_due_date_is_read_from_the_item_not_from_its_words() -> None:
    state = notified()
    responses = {item.subject: item for item in state.items_of(StepId.RR_AGENCY_RESPONSES)}
    # The police's date was set by a person, though its words read as a count; health's words read
    # as set, though its date was counted: the flag decides, not the words.
    state = replace(state, steps=tuple(
        replace(item, due_set_by_person=True) if item is responses["police"]
        else replace(item, rule="set by someone once") if item is responses["health"] else item
        for item in state.steps))
    outcome = handle(state, AnchorMoved(Anchor.NOTIFICATION, date(2026, 12, 29), "Corrected date"), context())
    moved = {(e.step, e.subject) for e in of_type(outcome.effects, RetimeItem)}
    assert (StepId.RR_AGENCY_RESPONSES, "health") in moved
    assert (StepId.RR_AGENCY_RESPONSES, "police") not in moved


def test_an_item_opened_on_a_date_a_person_gave_is_marked_so() -> None:
    from models.procedure import open_item
    from models.processes.action_plan import ACTION, ACTION_PLAN

    [opened] = of_type(tuple(open_item(notified(), ACTION, ACTION_PLAN, context(), subject="a1",
                                       agency=Agency.POLICE, anchor_on=DAY, due=date(2027, 2, 1),
                                       words="set by the action plan")), OpenItem)
    assert (opened.due_set_by_person, opened.rule) == (True, "set by the action plan")
    counted = of_type(handle(new_case(), Referred(), context()).effects, OpenItem)
    assert counted
    assert not any(e.due_set_by_person for e in counted)


@pytest.mark.parametrize(("anchor", "message"), [
    (Anchor.REFERRAL_RECEIVED, "the referral's date is fixed"),
    (Anchor.ACTION_ADDED, "each item's own date"),
    (Anchor("no-such-anchor"), "there is no anchor date no-such-anchor"),
])
def test_only_a_declared_movable_date_of_the_case_can_be_moved(anchor: Anchor, message: str) -> None:
    with pytest.raises(Refused, match=message):
        handle(notified(), AnchorMoved(anchor, date(2026, 12, 29), "A reason given"), context())


def test_a_rule_may_set_only_a_declared_date_of_the_case() -> None:
    from models.effects import SetAnchor
    from models.procedure import _settled

    with pytest.raises(AssertionError, match="not a declared date of the case"):
        _settled(notified(), [SetAnchor(Anchor("no-such-anchor"), DAY)], context())
    with pytest.raises(AssertionError, match="not a declared date of the case"):
        _settled(notified(), [SetAnchor(Anchor.ACTION_ADDED, DAY)], context())
