"""The Rapid Review: agency information, the meeting on the eighth working day, its outcome signed
off by the three DSPs, the report to the National Panel and the Panel's response, and the action
plan.

Its rules, each with its source:
- It starts once a case on a Rapid Review path is notified: the SIN's submission, or, without a
  SIN (a near miss, or a review the DSPs chose), their decision (local procedure, step 4).
- Every involved agency is asked for its information, each an item of its own due in 5 working
  days (10 for a near miss) and chased by its own timers until it is in (local procedure, step 4).
- The meeting is set on the 8th working day after notification (15 for a near miss), with an
  invitation to the DSPs and the agencies; moving it needs a reason and sends an update. It can go
  ahead with an agency's information missing: that is recorded, and the late information is still
  accepted.
- Its outcome (immediate safeguarding actions, learning, the recommendation and its rationale) is
  signed off by the three DSP roles within a working day of the meeting. A local CSPR recommended
  is commissioned at once (`models.processes.cspr.commission`); only a notified case can be
  referred for a national review (`models.rules.outcome_refusals`).
- With a SIN, the Rapid Review goes to the National Panel within 15 working days of the SIN's
  submission (National Panel expectation), carrying the outcome; the Panel's response may change
  the route (`models.rules.review_route`). A near miss sends nothing to the Panel.
- Its action plan is agreed within 20 working days of the outcome; its actions are the action
  plan's (`models.processes.action_plan`).
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import TYPE_CHECKING

from models.anchors import AnchorSpec
from models.calendar import LONDON, london_time
from models.enums import DSP_ROLES, INTERFACE_NAMES, Anchor, CasePath, ReviewRoute, Role, Stage
from models.errors import Refused
from models.forms import (
    AgencyResponseForm,
    MeetingHeldForm,
    MeetingMoveForm,
    PanelResponseForm,
    RapidReviewOutcomeForm,
    ReportSentForm,
    StepCompletionForm,
)
from models.processes.action_plan import ADD_ACTION
from models.processes.case import deputies
from models.processes.cspr import commission
from models.registry import AGENCY_LEAD, Act, OpenedBy, Process, Step, Wait
from models.rules import OUTCOME_RULES, outcome_refusals, review_route
from models.timetable import ClockSetting, WorkingDaysAfter

# The effects, the procedure's engine and the dashboard's descriptions are imported by the
# functions that use them: `sbu status` and `sbu timetable` read only the declarations below.
if TYPE_CHECKING:
    from models.effects import Effect
    from models.procedure import Context
    from models.state import CaseState, ItemState

RAPID_REVIEW_PATHS = (CasePath.SIN_AND_RAPID_REVIEW, CasePath.RAPID_REVIEW_ONLY,
                      CasePath.NEAR_MISS_RAPID_REVIEW)


def starts(state: CaseState) -> bool:
    return state.path in RAPID_REVIEW_PATHS and state.anchors.get(Anchor.NOTIFICATION) is not None


def start(state: CaseState, ctx: Context) -> list[Effect]:
    """Ask every involved agency for its information, and set the meeting and invite everyone
    (for a notified case, the report to the Panel opens too, counted from the SIN)."""
    from models.effects import InformationRequestMail, OpenItem, SendEmail
    from models.procedure import open_item

    effects: list[Effect] = []
    for agency in state.agencies:
        opened = open_item(state, AGENCY_RESPONSES, RAPID_REVIEW, ctx, subject=agency.value, agency=agency)
        effects += opened
        effects += [SendEmail(InformationRequestMail(agency=agency, due=effect.due))
                    for effect in opened if isinstance(effect, OpenItem)]
    effects += open_item(state, MEETING, RAPID_REVIEW, ctx)
    meeting = state.after(effects).item(MEETING.step)
    if meeting is not None and state.meeting is None:
        effects += arrange(state, on=meeting.due, at=ctx.reviews.rr_meeting_time,
                           place=ctx.reviews.rr_meeting_place, ctx=ctx)
    return effects


# -- the meeting --------------------------------------------------------------------------------------

def arrange(state: CaseState, *, on: date, at: time, place: str, ctx: Context,
            reason: str = "") -> list[Effect]:
    """Set the meeting (or move it): the invitation, or its update with the same UID and a higher
    SEQUENCE, to the DSPs and every involved agency."""
    from models.effects import ArrangeMeeting, MeetingInvitationMail, SendEmail

    sequence = state.meeting.sequence + 1 if state.meeting is not None else 0
    starts_at: datetime = london_time(on, at)
    minutes = ctx.reviews.rr_meeting_minutes
    return [ArrangeMeeting(starts_at=starts_at, minutes=minutes, place=place, sequence=sequence,
                           reason=reason),
            SendEmail(MeetingInvitationMail(starts_at=starts_at, minutes=minutes, place=place,
                                            sequence=sequence, agencies=state.agencies))]


def move_meeting(state: CaseState, form: MeetingMoveForm, ctx: Context) -> list[Effect]:
    from models.procedure import retime_item

    item = state.item(MEETING.step)
    if item is None or not item.is_open:
        raise Refused(f"{state.case_ref} has no Rapid Review meeting still to be held")
    if form.meeting_on < ctx.today:
        raise Refused("meeting_on is in the past")
    hour, minute = (int(part) for part in form.start_time.split(":"))
    effects: list[Effect] = []
    if form.meeting_on != item.due:
        effects += retime_item(item, form.meeting_on, f"moved on {ctx.today.isoformat()} (was "
                               f"{item.due.isoformat()})", form.reason, ctx)
    return effects + arrange(state, on=form.meeting_on, at=time(hour, minute), place=form.place, ctx=ctx,
                             reason=form.reason)


def meeting_retimed(state: CaseState, item: ItemState, due: date, reason: str, ctx: Context) -> list[Effect]:
    """`sbu retime ... rr-meeting` (or a moved notification date) moves the meeting itself: the
    same time of day and place on the new date, with an update to everyone invited."""
    if state.meeting is None:
        return []
    at = state.meeting.starts_at.astimezone(LONDON).time()
    return arrange(state, on=due, at=at, place=state.meeting.place, ctx=ctx, reason=reason)


def record_meeting(state: CaseState, form: MeetingHeldForm, ctx: Context, item: ItemState) -> list[Effect]:
    """The meeting was held: with every agency's information, or without some (recorded, and the
    late information still accepted); its outcome is due next."""
    from models.effects import SetAnchor
    from models.procedure import complete_item, structured_details

    missing = sorted(i.subject for i in state.items_of(AGENCY_RESPONSES.step) if i.is_open)
    return [
        SetAnchor(Anchor.MEETING, form.completed_on),
        *complete_item(item, form.completed_on,
                       details={**structured_details(form, "completed_on"), "held_without": missing}),
    ]


# -- the outcome and the Panel ------------------------------------------------------------------------

def record_outcome(state: CaseState, form: RapidReviewOutcomeForm, ctx: Context,
                   item: ItemState) -> list[Effect]:
    from models.effects import SetAnchor, SetReview
    from models.procedure import complete_item

    notified = state.anchors.get(Anchor.SIN_SUBMITTED) is not None
    refusals = outcome_refusals(notified=notified, recommendation=form.recommendation)
    if refusals:
        raise Refused(f"{state.case_ref}: the outcome was not recorded: {'; '.join(refusals)}")
    effects: list[Effect] = [
        SetAnchor(Anchor.RR_OUTCOME, form.decided_on), SetReview(form.recommendation),
        *complete_item(item, form.decided_on, details={"recommendation": form.recommendation.value,
                                                       "deputies": deputies(form)}),
    ]
    if form.recommendation is ReviewRoute.LOCAL_CSPR:
        effects += commission(state, on=form.decided_on, by_panel=False, ctx=ctx)
    return effects


def refuse_a_conflicting_outcome(state: CaseState, form: RapidReviewOutcomeForm) -> None:
    """The same recommendation again is already recorded; a different one is refused, as a
    conflicting DSP decision is (`models.processes.case.refuse_a_conflicting_decision`)."""
    outcome = state.item(OUTCOME.step)
    if outcome is None or outcome.details.get("recommendation") in (None, form.recommendation.value):
        return
    where = f" through {INTERFACE_NAMES[outcome.completed_via]}" if outcome.completed_via else ""
    raise Refused(f"{state.case_ref} already has a Rapid Review outcome, already recorded{where}; a "
                  f"conflicting outcome was not recorded (`sbu status {state.case_ref}` shows the one "
                  "recorded)")


def recommendation(state: CaseState) -> ReviewRoute:
    """What the Rapid Review's outcome recommended (the report to the Panel is sent only after it)."""
    outcome = state.item(OUTCOME.step)
    if outcome is None or not outcome.details.get("recommendation"):
        raise Refused(f"{state.case_ref}: record the Rapid Review's outcome first")
    return ReviewRoute(outcome.details["recommendation"])


def record_report_sent(state: CaseState, form: ReportSentForm, ctx: Context, item: ItemState) -> list[Effect]:
    from models.effects import SetAnchor
    from models.procedure import complete_item, structured_details

    if not state.done(OUTCOME.step):
        raise Refused(f"{state.case_ref}: record the Rapid Review's outcome first: the report carries it")
    return [SetAnchor(Anchor.RR_REPORT_SENT, form.completed_on),
            *complete_item(item, form.completed_on, details=structured_details(form, "completed_on"))]


def record_panel_response(state: CaseState, form: PanelResponseForm, ctx: Context,
                          item: ItemState) -> list[Effect]:
    """The Panel's response, and the route it gives the review: a CSPR commissioned where the
    Panel disagrees with none (or declines a national review), none carried on where it holds a
    national review."""
    from models.effects import SetReview
    from models.procedure import cancel_item, complete_item, structured_details

    route = review_route(recommendation(state), form.response)
    effects: list[Effect] = [*complete_item(item, form.completed_on,
                                            details=structured_details(form, "completed_on"))]
    if route is not state.review:
        effects.append(SetReview(route))
    cspr_started = state.anchors.get(Anchor.CSPR_COMMISSIONED) is not None
    if route is ReviewRoute.LOCAL_CSPR and not cspr_started:
        effects += commission(state, on=form.completed_on, by_panel=True, ctx=ctx)
    if route is ReviewRoute.NATIONAL_REVIEW and cspr_started:
        for still_open in state.open_steps():
            spec = ctx.registry.item(still_open.step)
            if spec is not None and spec.national_review_cancels:
                effects += cancel_item(still_open)
    return effects


# -- the dashboard --------------------------------------------------------------------------------------

def describe_meeting(state: CaseState, wait: Wait) -> list[str]:
    from models.descriptions import wait_items

    responses = state.items_of(AGENCY_RESPONSES.step)
    received = [i.subject for i in responses if not i.is_open]
    outstanding = [i.subject for i in responses if i.is_open]
    lines = ["Record each involved agency's information as it comes in, and the Rapid Review meeting "
             "once it is held; move the meeting, with its reason, if it must move (everyone invited "
             "gets an update).", "",
             f"Agency information received: {len(received)} of {len(responses)}"
             + (f"; still awaited: {', '.join(outstanding)}." if outstanding else "."), ""]
    if state.meeting is not None:
        starts = state.meeting.starts_at.astimezone(LONDON)
        lines += [f"**The meeting** is set for {starts:%A %d %B %Y at %H:%M} (London time), "
                  f"invitation version {state.meeting.sequence}.", ""]
    for item, rule in wait_items(wait, state):
        if item.is_open:
            lines.append(f"- `{item.label}`: due {item.due:%a %d %b %Y} ({item.rule}; {rule.source})")
    lines += ["", "Choose what to record at the top of the form: an agency's information, the meeting "
              "held (it can go ahead without an agency's information), or the meeting moved."]
    return lines


def describe_outcome(state: CaseState, wait: Wait) -> list[str]:
    from models.descriptions import due_line

    item = state.item(OUTCOME.step)
    return [
        "The Rapid Review's outcome: the immediate safeguarding actions, the learning identified, "
        "and the recommendation with its rationale, signed off by the three DSP roles.",
        "",
        due_line(item, OUTCOME.rule) if item is not None else "",
        "",
        *(f"- {rule}" for rule in OUTCOME_RULES),
        "",
        "The free text is copied to the case store and removed from Prefect once read.",
        *information_awaited(state),
    ]


def information_awaited(state: CaseState) -> list[str]:
    """The agencies whose information is still awaited after the meeting: the form still takes it."""
    from models.descriptions import due_line

    lines = [f"- **{item.title}** ({item.subject}): "
             + due_line(item, AGENCY_RESPONSES.rule).removeprefix("**Due:** ")
             for item in state.items_of(AGENCY_RESPONSES.step) if item.is_open]
    if not lines:
        return []
    return ["", "Still awaited, and still taken on this form (choose it at the top):", "", *lines]


def describe_panel_and_plan(state: CaseState, wait: Wait) -> list[str]:
    from models.descriptions import open_item_lines

    return [
        "Record what follows the Rapid Review's outcome, as each happens: its report sent to the "
        "National Panel (with the reference it went under), the Panel's response, and the action "
        "plan agreed; add each action of the plan, owned by an agency and due on the date the plan "
        "sets. An agency's late information is still taken.",
        "",
        *open_item_lines(wait, state),
        "",
        "Choose what to record at the top of the form.",
    ]


AGENCY_RESPONSES = Step(
    "rr-agency-responses", "Agency information for the Rapid Review",
    owner=Role.AGENCY, anchor=Anchor.NOTIFICATION, source="local procedure, step 4",
    clock=WorkingDaysAfter(ClockSetting("rr_agency_responses_days", 5, at_most=60),
                           ClockSetting("near_miss_rr_agency_responses_days", 10, at_most=120)),
    form=AgencyResponseForm, recorded_by=(Role.SBU, AGENCY_LEAD), subject_field="agency",
    # Taken on every form of the Rapid Review, late or not, without holding any of them open.
    also_on=("rr-meeting", "rr-outcome", "rr-panel-and-plan"),
    # Each agency gets its own information request (`start`) instead of a "step opened" email.
    notify_owner=False, label="Agency info")
MEETING = Step(
    "rr-meeting", "Rapid Review meeting is held",
    owner=Role.SBU, anchor=Anchor.NOTIFICATION, source="local procedure, step 4",
    clock=WorkingDaysAfter(ClockSetting("rr_meeting_day", 8, at_most=60),
                           ClockSetting("near_miss_rr_meeting_day", 15, at_most=120), held_on=True),
    form=MeetingHeldForm, waits=("rr-meeting",), record=record_meeting, on_retime=meeting_retimed,
    label="Meeting held")
OUTCOME = Step(
    "rr-outcome", "Rapid Review outcome signed off by the DSPs",
    owner=Role.SBU, anchor=Anchor.MEETING, source="local procedure, step 4",
    clock=WorkingDaysAfter(ClockSetting("rr_outcome_days", 1, at_most=60)),
    form=RapidReviewOutcomeForm, recorded_by=(Role.SBU, *DSP_ROLES), waits=("rr-outcome",),
    opens=OpenedBy(MEETING.step), record=record_outcome, on_repeat=refuse_a_conflicting_outcome,
    date_field="decided_on", label="Outcome")
REPORT_TO_PANEL = Step(
    "rr-report-to-panel", "Rapid Review sent to the National Panel",
    owner=Role.SBU, anchor=Anchor.SIN_SUBMITTED, source="National Panel expectation",
    clock=WorkingDaysAfter(ClockSetting("rr_report_to_panel_days", 15, at_most=120)),
    # Opens on start for a notified case only: a near miss has no SIN to count it from.
    form=ReportSentForm, waits=("rr-panel-and-plan",), record=record_report_sent, label="To Panel")
PANEL_RESPONSE = Step(
    "rr-panel-response", "National Panel's response recorded",
    owner=Role.SBU, anchor=Anchor.RR_REPORT_SENT, source="National Panel practice (expected)",
    clock=WorkingDaysAfter(ClockSetting("rr_panel_response_days", 15, at_most=120)),
    form=PanelResponseForm, waits=("rr-panel-and-plan",), opens=OpenedBy(REPORT_TO_PANEL.step),
    record=record_panel_response, label="Panel reply")
ACTION_PLAN = Step(
    "rr-action-plan", "Rapid Review action plan agreed",
    owner=Role.SBU, anchor=Anchor.RR_OUTCOME, source="local procedure; Working Together (action plans)",
    clock=WorkingDaysAfter(ClockSetting("rr_action_plan_days", 20, at_most=120)),
    form=StepCompletionForm, waits=("rr-panel-and-plan",), opens=OpenedBy(OUTCOME.step), label="Plan agreed")
MOVE_MEETING = Act("rr-meeting-moved", "Meeting moved", MeetingMoveForm, move_meeting, label="Meeting moved")

RAPID_REVIEW = Process(
    id="rapid-review",
    title="Rapid Review",
    flow="flows.rapid_review:rapid_review_flow",
    run_name="{case_ref} rapid review",
    steps=(AGENCY_RESPONSES, MEETING, OUTCOME, REPORT_TO_PANEL, PANEL_RESPONSE, ACTION_PLAN),
    waits=(
        Wait("rr-meeting", "Rapid Review: agency information and the meeting", acts=(MOVE_MEETING,),
             describe=describe_meeting),
        Wait("rr-outcome", "Rapid Review outcome", describe=describe_outcome),
        Wait("rr-panel-and-plan", "Rapid Review: the National Panel and the action plan", acts=(ADD_ACTION,),
             describe=describe_panel_and_plan),
    ),
    starts=starts,
    on_start=start,
    acts=(MOVE_MEETING,),
    stage=Stage.RAPID_REVIEW,
    # Set by the meeting held, the outcome signed off and the review sent to the Panel.
    anchors=(
        AnchorSpec(Anchor.MEETING, "Rapid Review meeting held"),
        AnchorSpec(Anchor.RR_OUTCOME, "Rapid Review outcome signed off"),
        AnchorSpec(Anchor.RR_REPORT_SENT, "Rapid Review sent to the National Panel"),
    ),
)
