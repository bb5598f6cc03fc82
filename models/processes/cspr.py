"""The Child Safeguarding Practice Review: commissioned on the Rapid Review's recommendation (or the
National Panel's response), conducted by independent reviewers, published, and followed by its
action plan.

Its rules, each with its source:
- It starts when it is commissioned; its planned publication date starts as its publication
  target, 6 calendar months on (National Panel expectation), and can be moved with a reason.
- Reviewer(s) appointed, terms of reference agreed, IMRs requested, family engagement, draft and
  final report: each due by its clock from commissioning (local procedure, step 6).
- IMRs: one per agency asked, due on the date the review panel sets (procedure, "IMR guidance"),
  received, and checked section by section against the partnership's template; an IMR with
  sections missing is chased for the rest. Its content stays in the agency's secure channels.
- Family engagement is recorded as engaged, declined or not appropriate, with the reason
  (procedure, "Family engagement").
- The final report goes to the Panel and the Secretary of State at least 7 working days before
  the planned publication date, counted as the 7th working day strictly before it (Working
  Together); it follows the planned date when that moves.
- Once published, its action plan is agreed within 20 working days.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from models.anchors import AnchorSpec
from models.enums import Anchor, Role, Stage
from models.errors import Refused
from models.forms import (
    FamilyEngagementForm,
    ImrReceivedForm,
    ImrRequestsForm,
    PlannedPublicationForm,
    PublicationForm,
    ReportSentForm,
    ReviewersAppointedForm,
    StepCompletionForm,
)
from models.processes.action_plan import ADD_ACTION
from models.registry import AGENCY_LEAD, Act, OpenedBy, Process, Step, Wait
from models.timetable import ClockSetting, MonthsAfter, WorkingDaysAfter, WorkingDaysBefore

# The effects, the procedure's engine and the dashboard's descriptions are imported by the
# functions that use them: `sbu status` and `sbu timetable` read only the declarations below.
if TYPE_CHECKING:
    from models.effects import Effect
    from models.procedure import Context
    from models.state import CaseState, ItemState


def commission(state: CaseState, *, on: date, by_panel: bool, ctx: Context) -> list[Effect]:
    """A local CSPR commissioned on `on`: its planned publication date starts as its target, and
    the DSPs are told. The CSPR's own process starts from the commissioning date."""
    from models.effects import CsprCommissionedMail, SendEmail, SetAnchor

    target, _ = PUBLICATION.rule.due(on, clocks=ctx.clocks, calendar=ctx.calendar)
    return [SetAnchor(Anchor.CSPR_COMMISSIONED, on), SetAnchor(Anchor.PLANNED_PUBLICATION, target),
            SendEmail(CsprCommissionedMail(commissioned_on=on, publication_target=target, by_panel=by_panel))]


def starts(state: CaseState) -> bool:
    return state.anchors.get(Anchor.CSPR_COMMISSIONED) is not None


# -- IMRs -----------------------------------------------------------------------------------------------

def record_imr_requests(state: CaseState, form: ImrRequestsForm, ctx: Context,
                        item: ItemState) -> list[Effect]:
    """The IMRs requested: one item per agency asked, due on the date the panel set (or by the
    partnership's default clock), each agency told which sections the template requires."""
    from models.effects import ImrRequestMail, SendEmail, SetAnchor
    from models.procedure import complete_item, open_item

    agencies = tuple(form.agencies) if form.agencies else state.agencies
    effects: list[Effect] = [SetAnchor(Anchor.IMRS_REQUESTED, form.completed_on),
                             *complete_item(item, form.completed_on,
                                            details={"imrs_due": form.imrs_due.isoformat() if form.imrs_due
                                                     else None,
                                                     "agencies": [agency.value for agency in agencies]})]
    requested = state.after(effects)
    for agency in agencies:
        opened = open_item(requested, IMR, CSPR, ctx, subject=agency.value, agency=agency, due=form.imrs_due,
                           words="set by the review panel" if form.imrs_due else None)
        effects += opened
        due = form.imrs_due or requested.after(opened).item(IMR.step, agency.value).due  # type: ignore[union-attr]
        effects.append(SendEmail(ImrRequestMail(agency=agency, due=due, sections=ctx.reviews.imr_sections)))
    return effects


def record_imr(state: CaseState, form: ImrReceivedForm, ctx: Context, item: ItemState) -> list[Effect]:
    """An IMR received: complete when no section of the template is missing; otherwise its
    completeness is recorded section by section and the agency is chased for the rest."""
    from models.effects import ImrIncompleteMail, SendEmail, UpdateItem
    from models.procedure import complete_item, retime_item

    sections = ctx.reviews.imr_sections
    if not set(form.missing_sections) <= set(sections):
        raise Refused(f"missing_sections: not a section of the partnership's IMR template (its sections: "
                      f"{', '.join(sections)})")
    checked = {section: "missing" if section in form.missing_sections else "present" for section in sections}
    if not form.missing_sections:
        return complete_item(item, form.completed_on, details={"sections": checked})
    resubmission_days = ctx.clocks.length(IMR_RESUBMISSION)
    rest_due = ctx.calendar.add_working_days(max(form.completed_on, ctx.today), resubmission_days)
    missing = tuple(section for section in sections if section in form.missing_sections)
    effects: list[Effect] = [UpdateItem(step=item.step, subject=item.subject, action="imr-incomplete",
                                        details={"received_on": form.completed_on.isoformat(),
                                                 "sections": checked, "missing_sections": list(missing)})]
    if rest_due != item.due:
        effects += retime_item(item, rest_due, f"the rest due {resubmission_days} working "
                               "days after an incomplete IMR", "sections missing", ctx)
    assert item.agency is not None
    return [*effects, SendEmail(ImrIncompleteMail(agency=item.agency, due=rest_due, missing=missing))]


# -- publication ----------------------------------------------------------------------------------------

def move_publication(state: CaseState, form: PlannedPublicationForm, ctx: Context) -> list[Effect]:
    from models.effects import AnchorMoved
    from models.procedure import move_anchor

    if form.planned_on < ctx.today:
        raise Refused("planned_on is in the past")
    return move_anchor(state, AnchorMoved(anchor=Anchor.PLANNED_PUBLICATION, on=form.planned_on,
                                          reason=form.reason), ctx)


def record_publication(state: CaseState, form: PublicationForm, ctx: Context,
                       item: ItemState) -> list[Effect]:
    from models.effects import SetAnchor
    from models.procedure import complete_item, structured_details

    return [SetAnchor(Anchor.CSPR_PUBLISHED, form.completed_on),
            *complete_item(item, form.completed_on, details=structured_details(form, "completed_on"))]


# -- the dashboard --------------------------------------------------------------------------------------

def describe(state: CaseState, wait: Wait) -> list[str]:
    from models.descriptions import due_line, wait_items

    planned = state.anchors.get(Anchor.PLANNED_PUBLICATION)
    lines = [wait.asks, ""]
    if planned is not None:
        lines += [f"Planned publication: {planned:%A %d %B %Y}.", ""]
    for item, rule in wait_items(wait, state):
        if not item.is_open:
            continue
        lines.append(f"- **{item.title}**" + (f" ({item.subject})" if item.subject else "") + ": "
                     + due_line(item, rule).removeprefix("**Due:** "))
        missing = item.details.get("missing_sections")
        if missing:
            lines.append(f"  - received with sections missing: {', '.join(missing)}")
    lines += ["", "Choose what to record at the top of the form."]
    return lines


# Its steps counted from commissioning end if the Panel holds a national review instead
# (`national_review_cancels`); the action plan, after publication, never meets one.
REVIEWERS = Step(
    "cspr-reviewer-appointed", "Independent reviewer appointed",
    owner=Role.SBU, anchor=Anchor.CSPR_COMMISSIONED, source="local procedure, step 6",
    clock=WorkingDaysAfter(ClockSetting("cspr_reviewer_appointed_days", 10, at_most=250)),
    form=ReviewersAppointedForm, waits=("cspr-setup",), national_review_cancels=True, label="Reviewers")
TERMS_OF_REFERENCE = Step(
    "cspr-terms-of-reference", "Terms of reference agreed",
    owner=Role.SBU, anchor=Anchor.CSPR_COMMISSIONED, source="local procedure, step 6",
    clock=WorkingDaysAfter(ClockSetting("cspr_terms_of_reference_days", 20, at_most=250)),
    form=StepCompletionForm, waits=("cspr-setup",), national_review_cancels=True, label="Terms")
IMR_REQUESTS = Step(
    "cspr-imr-requests", "Individual Management Reviews requested",
    owner=Role.SBU, anchor=Anchor.CSPR_COMMISSIONED, source="local procedure, IMRs",
    clock=WorkingDaysAfter(ClockSetting("cspr_imr_requests_days", 10, at_most=250)),
    form=ImrRequestsForm, waits=("cspr-setup",), record=record_imr_requests, national_review_cancels=True,
    label="IMR requests")
# An IMR received with sections missing is chased for the rest, due this many working days on.
IMR_RESUBMISSION = ClockSetting("imr_resubmission_days", 5, at_most=60)
IMR = Step(
    "cspr-imr", "Individual Management Review",
    owner=Role.AGENCY, anchor=Anchor.IMRS_REQUESTED,
    source="local procedure, IMRs (by the date the review panel sets)",
    # Due on the date the review panel sets; this many working days after the requests if none.
    clock=WorkingDaysAfter(ClockSetting("cspr_imrs_days", 30, at_most=250)),
    form=ImrReceivedForm, recorded_by=(Role.SBU, AGENCY_LEAD), subject_field="agency",
    waits=("cspr-evidence",), also_on=("cspr-report",), opens=OpenedBy(IMR_REQUESTS.step),
    record=record_imr, uses=(IMR_RESUBMISSION,), national_review_cancels=True,
    # Each agency gets its IMR request, naming the template's sections, instead of a "step opened".
    notify_owner=False, label="IMR received")
FAMILY_ENGAGEMENT = Step(
    "cspr-family-engagement", "Family engagement completed",
    owner=Role.SBU, anchor=Anchor.CSPR_COMMISSIONED, source="local procedure, step 6",
    clock=WorkingDaysAfter(ClockSetting("cspr_family_engagement_days", 60, at_most=250)),
    form=FamilyEngagementForm, waits=("cspr-evidence",), also_on=("cspr-setup",),
    national_review_cancels=True, label="Family")
DRAFT_REPORT = Step(
    "cspr-draft-report", "Draft report received",
    owner=Role.SBU, anchor=Anchor.CSPR_COMMISSIONED, source="local procedure, step 6",
    clock=WorkingDaysAfter(ClockSetting("cspr_draft_report_days", 90, at_most=250)),
    form=StepCompletionForm, waits=("cspr-evidence",), national_review_cancels=True, label="Draft")
FINAL_REPORT = Step(
    "cspr-final-report", "Final report agreed",
    owner=Role.SBU, anchor=Anchor.CSPR_COMMISSIONED, source="local procedure, step 6",
    clock=WorkingDaysAfter(ClockSetting("cspr_final_report_days", 110, at_most=250)),
    form=StepCompletionForm, waits=("cspr-report",), national_review_cancels=True, label="Final report")
REPORT_TO_PANEL = Step(
    "cspr-report-to-panel", "Final report sent to the Panel and the Secretary of State",
    owner=Role.SBU, anchor=Anchor.PLANNED_PUBLICATION,
    source="Working Together (at least 7 working days before)",
    clock=WorkingDaysBefore(ClockSetting("cspr_report_to_panel_days_before", 7, at_most=60)),
    # Due before its anchor (the planned publication date), so done before it.
    form=ReportSentForm, waits=("cspr-report",), done_before_anchor=True, national_review_cancels=True,
    label="To Panel")
PUBLICATION = Step(
    "cspr-publication", "Review published",
    owner=Role.SBU, anchor=Anchor.CSPR_COMMISSIONED, source="National Panel expectation (6 months)",
    clock=MonthsAfter(ClockSetting("cspr_publication_months", 6, at_most=24)),
    form=PublicationForm, waits=("cspr-report",), record=record_publication, national_review_cancels=True,
    label="Published")
ACTION_PLAN = Step(
    "cspr-action-plan", "CSPR action plan agreed",
    owner=Role.SBU, anchor=Anchor.CSPR_PUBLISHED, source="local procedure; Working Together (action plans)",
    clock=WorkingDaysAfter(ClockSetting("cspr_action_plan_days", 20, at_most=120)),
    form=StepCompletionForm, waits=("cspr-action-plan",), opens=OpenedBy(PUBLICATION.step),
    label="Plan agreed")
MOVE_PUBLICATION = Act("cspr-publication-moved", "Planned publication date moved", PlannedPublicationForm,
                       move_publication, label="Date moved")

CSPR = Process(
    id="cspr",
    title="Child Safeguarding Practice Review",
    flow="flows.cspr:cspr_flow",
    run_name="{case_ref} cspr",
    steps=(REVIEWERS, TERMS_OF_REFERENCE, IMR_REQUESTS, IMR, FAMILY_ENGAGEMENT, DRAFT_REPORT, FINAL_REPORT,
           REPORT_TO_PANEL, PUBLICATION, ACTION_PLAN),
    waits=(
        Wait("cspr-setup", "CSPR: reviewers, terms of reference and IMR requests", describe=describe,
             asks="Record the review's set-up as each part is done: the independent reviewer(s) "
                  "appointed, the terms of reference agreed, the IMRs requested from the agencies "
                  "(with the date the review panel sets for them), and family engagement."),
        Wait("cspr-evidence", "CSPR: IMRs, family engagement and the draft report", describe=describe,
             asks="Record each agency's IMR as it is received, naming any section of the "
                  "partnership's template it lacks (the agency is then chased for the rest), the "
                  "family's engagement, and the draft report received."),
        Wait("cspr-report", "CSPR: final report, the Panel and publication", acts=(MOVE_PUBLICATION,),
             describe=describe,
             asks="Record the final report agreed, sent to the National Panel and the Secretary of "
                  "State at least 7 working days before the planned publication date, and the review "
                  "published; move the planned publication date, with its reason, if it changes. A "
                  "late IMR is still taken."),
        Wait("cspr-action-plan", "CSPR action plan", acts=(ADD_ACTION,), describe=describe,
             asks="Record the review's action plan agreed, and add each of its actions, owned by an "
                  "agency and due on the date the plan sets."),
    ),
    starts=starts,
    acts=(MOVE_PUBLICATION,),
    stage=Stage.CSPR,
    # Set by its commissioning (with the planned publication, which a person may move), the IMRs
    # requested and the review published.
    anchors=(
        AnchorSpec(Anchor.CSPR_COMMISSIONED, "CSPR commissioned"),
        AnchorSpec(Anchor.PLANNED_PUBLICATION, "CSPR's planned publication"),
        AnchorSpec(Anchor.IMRS_REQUESTED, "IMRs requested"),
        AnchorSpec(Anchor.CSPR_PUBLISHED, "CSPR published"),
    ),
)
