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

from models.descriptions import due_line, wait_items
from models.effects import (
    AnchorMoved,
    CsprCommissionedMail,
    Effect,
    ImrIncompleteMail,
    ImrRequestMail,
    SendEmail,
    SetAnchor,
    UpdateItem,
)
from models.enums import Anchor, StepId
from models.errors import Refused
from models.forms import (
    ImrReceivedForm,
    ImrRequestsForm,
    PlannedPublicationForm,
    PublicationForm,
)
from models.procedure import (
    Context,
    complete_item,
    move_anchor,
    open_item,
    retime_item,
    structured_details,
)
from models.processes.action_plan import ADD_ACTION
from models.registry import Act, ItemSpec, Process, Wait
from models.state import CaseState, ItemState


def commission(state: CaseState, *, on: date, by_panel: bool, ctx: Context) -> list[Effect]:
    """A local CSPR commissioned on `on`: its planned publication date starts as its target, and
    the DSPs are told. The CSPR's own process starts from the commissioning date."""
    target, _ = PUBLICATION.rule.due(on, clocks=ctx.clocks, calendar=ctx.calendar)
    return [SetAnchor(Anchor.CSPR_COMMISSIONED, on), SetAnchor(Anchor.PLANNED_PUBLICATION, target),
            SendEmail(CsprCommissionedMail(commissioned_on=on, publication_target=target, by_panel=by_panel))]


def starts(state: CaseState) -> bool:
    return state.anchors.get(Anchor.CSPR_COMMISSIONED) is not None


def start(state: CaseState, ctx: Context) -> list[Effect]:
    """Every step counted from commissioning, and the report to the Panel from the planned
    publication date; the IMRs open when they are requested, the action plan once published."""
    effects: list[Effect] = []
    for spec in (REVIEWERS, TERMS_OF_REFERENCE, IMR_REQUESTS, FAMILY_ENGAGEMENT, DRAFT_REPORT,
                 FINAL_REPORT, REPORT_TO_PANEL, PUBLICATION):
        effects += open_item(state, spec, CSPR, ctx)
    return effects


# -- IMRs -----------------------------------------------------------------------------------------------

def record_imr_requests(state: CaseState, form: ImrRequestsForm, ctx: Context,
                        item: ItemState) -> list[Effect]:
    """The IMRs requested: one item per agency asked, due on the date the panel set (or by the
    partnership's default clock), each agency told which sections the template requires."""
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
    sections = ctx.reviews.imr_sections
    if not set(form.missing_sections) <= set(sections):
        raise Refused(f"missing_sections: not a section of the partnership's IMR template (its sections: "
                      f"{', '.join(sections)})")
    checked = {section: "missing" if section in form.missing_sections else "present" for section in sections}
    if not form.missing_sections:
        return complete_item(item, form.completed_on, details={"sections": checked})
    rest_due = ctx.calendar.add_working_days(max(form.completed_on, ctx.today),
                                             ctx.clocks.imr_resubmission_days)
    missing = tuple(section for section in sections if section in form.missing_sections)
    effects: list[Effect] = [UpdateItem(step=item.step, subject=item.subject, action="imr-incomplete",
                                        details={"received_on": form.completed_on.isoformat(),
                                                 "sections": checked, "missing_sections": list(missing)})]
    if rest_due != item.due:
        effects += retime_item(item, rest_due, f"the rest due {ctx.clocks.imr_resubmission_days} working "
                               "days after an incomplete IMR", "sections missing", ctx)
    assert item.agency is not None
    return [*effects, SendEmail(ImrIncompleteMail(agency=item.agency, due=rest_due, missing=missing))]


# -- publication ----------------------------------------------------------------------------------------

def move_publication(state: CaseState, form: PlannedPublicationForm, ctx: Context) -> list[Effect]:
    if form.planned_on < ctx.today:
        raise Refused("planned_on is in the past")
    return move_anchor(state, AnchorMoved(anchor=Anchor.PLANNED_PUBLICATION, on=form.planned_on,
                                          reason=form.reason), ctx)


def record_publication(state: CaseState, form: PublicationForm, ctx: Context,
                       item: ItemState) -> list[Effect]:
    effects: list[Effect] = [SetAnchor(Anchor.CSPR_PUBLISHED, form.completed_on),
                             *complete_item(item, form.completed_on,
                                            details=structured_details(form, "completed_on"))]
    return effects + open_item(state.after(effects), ACTION_PLAN, CSPR, ctx)


# -- the dashboard --------------------------------------------------------------------------------------

# What each of the CSPR's forms asks, above the items it answers.
_ASKED = {
    "cspr-setup": "Record the review's set-up as each part is done: the independent reviewer(s) "
                  "appointed, the terms of reference agreed, the IMRs requested from the agencies "
                  "(with the date the review panel sets for them), and family engagement.",
    "cspr-evidence": "Record each agency's IMR as it is received, naming any section of the "
                     "partnership's template it lacks (the agency is then chased for the rest), the "
                     "family's engagement, and the draft report received.",
    "cspr-report": "Record the final report agreed, sent to the National Panel and the Secretary of "
                   "State at least 7 working days before the planned publication date, and the review "
                   "published; move the planned publication date, with its reason, if it changes. A "
                   "late IMR is still taken.",
    "cspr-action-plan": "Record the review's action plan agreed, and add each of its actions, owned by "
                        "an agency and due on the date the plan sets.",
}


def describe(state: CaseState, wait: Wait) -> list[str]:
    planned = state.anchors.get(Anchor.PLANNED_PUBLICATION)
    lines = [_ASKED[wait.name], ""]
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


REVIEWERS = ItemSpec.of(StepId.CSPR_REVIEWER_APPOINTED, label="Reviewers")
TERMS_OF_REFERENCE = ItemSpec.of(StepId.CSPR_TERMS_OF_REFERENCE, label="Terms")
IMR_REQUESTS = ItemSpec.of(StepId.CSPR_IMR_REQUESTS, record=record_imr_requests, label="IMR requests")
# Each agency gets its IMR request, naming the template's sections, instead of a "step opened" email.
IMR = ItemSpec.of(StepId.CSPR_IMR, record=record_imr, subject_field="agency", notify_owner=False,
                  label="IMR received")
FAMILY_ENGAGEMENT = ItemSpec.of(StepId.CSPR_FAMILY_ENGAGEMENT, label="Family")
DRAFT_REPORT = ItemSpec.of(StepId.CSPR_DRAFT_REPORT, label="Draft")
FINAL_REPORT = ItemSpec.of(StepId.CSPR_FINAL_REPORT, label="Final report")
# Due before its anchor (the planned publication date), so done before it.
REPORT_TO_PANEL = ItemSpec.of(StepId.CSPR_REPORT_TO_PANEL, done_before_anchor=True, label="To Panel")
PUBLICATION = ItemSpec.of(StepId.CSPR_PUBLICATION, record=record_publication, label="Published")
ACTION_PLAN = ItemSpec.of(StepId.CSPR_ACTION_PLAN, label="Plan agreed")
MOVE_PUBLICATION = Act("cspr-publication-moved", "Planned publication date moved", PlannedPublicationForm,
                       move_publication, label="Date moved")

# Every step of the CSPR (a Panel's national review cancels those still open).
CSPR_STEPS = (StepId.CSPR_REVIEWER_APPOINTED, StepId.CSPR_TERMS_OF_REFERENCE, StepId.CSPR_IMR_REQUESTS,
              StepId.CSPR_IMR, StepId.CSPR_FAMILY_ENGAGEMENT, StepId.CSPR_DRAFT_REPORT,
              StepId.CSPR_FINAL_REPORT, StepId.CSPR_REPORT_TO_PANEL, StepId.CSPR_PUBLICATION)

CSPR = Process(
    id="cspr",
    title="Child Safeguarding Practice Review",
    flow="flows.cspr:cspr_flow",
    run_name="{case_ref} cspr",
    items=(REVIEWERS, TERMS_OF_REFERENCE, IMR_REQUESTS, IMR, FAMILY_ENGAGEMENT, DRAFT_REPORT, FINAL_REPORT,
           REPORT_TO_PANEL, PUBLICATION, ACTION_PLAN),
    waits=(
        Wait("cspr-setup", "CSPR: reviewers, terms of reference and IMR requests",
             (REVIEWERS, TERMS_OF_REFERENCE, IMR_REQUESTS, FAMILY_ENGAGEMENT),
             primary=(StepId.CSPR_REVIEWER_APPOINTED, StepId.CSPR_TERMS_OF_REFERENCE,
                      StepId.CSPR_IMR_REQUESTS), describe=describe),
        Wait("cspr-evidence", "CSPR: IMRs, family engagement and the draft report",
             (IMR, FAMILY_ENGAGEMENT, DRAFT_REPORT),
             primary=(StepId.CSPR_IMR, StepId.CSPR_FAMILY_ENGAGEMENT, StepId.CSPR_DRAFT_REPORT),
             describe=describe),
        Wait("cspr-report", "CSPR: final report, the Panel and publication",
             (FINAL_REPORT, REPORT_TO_PANEL, PUBLICATION, IMR), acts=(MOVE_PUBLICATION,),
             primary=(StepId.CSPR_FINAL_REPORT, StepId.CSPR_REPORT_TO_PANEL, StepId.CSPR_PUBLICATION),
             describe=describe),
        Wait("cspr-action-plan", "CSPR action plan", (ACTION_PLAN,), acts=(ADD_ACTION,), describe=describe),
    ),
    starts=starts,
    on_start=start,
    acts=(MOVE_PUBLICATION,),
)
