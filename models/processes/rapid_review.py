"""The Rapid Review: agency information, the meeting on the eighth working day, the report to the
National Panel.

Its rules, each with its source:
- It starts once a case on a Rapid Review path is notified: the SIN's submission, or, without a
  SIN (a near miss, or a review the DSPs chose), their decision (local procedure, step 4).
- Every involved agency is asked for its information, due in 5 working days (10 for a near miss);
  the step is done when the last agency's information is in (local procedure, step 4).
- The meeting is held on the 8th working day after notification (15 for a near miss).
- With a SIN, the Rapid Review goes to the National Panel within 15 working days of the SIN's
  submission (National Panel expectation); a near miss sends nothing to the Panel.
"""

from __future__ import annotations

from models.descriptions import wait_items
from models.effects import (
    Effect,
    InformationRequestMail,
    OpenItem,
    RecordAgencyResponse,
    SendEmail,
    SetAnchor,
)
from models.enums import CasePath, StepId
from models.errors import Refused
from models.forms import STEP_FORMS, AgencyResponseForm, StepCompletionForm
from models.procedure import Context, complete_item, open_anchored_items
from models.registry import ItemSpec, Process, Wait
from models.state import CaseState, ItemState
from models.timetable import STEP_RULES, Anchor

RAPID_REVIEW_PATHS = (CasePath.SIN_AND_RAPID_REVIEW, CasePath.RAPID_REVIEW_ONLY,
                      CasePath.NEAR_MISS_RAPID_REVIEW)


def starts(state: CaseState) -> bool:
    return state.path in RAPID_REVIEW_PATHS and state.anchors.get(Anchor.NOTIFICATION) is not None


def start(state: CaseState, ctx: Context) -> list[Effect]:
    """Open the Rapid Review's steps whose anchor is known and ask every agency for its
    information."""
    effects = open_anchored_items(state, RAPID_REVIEW, ctx)
    responses = next((e for e in effects if isinstance(e, OpenItem) and e.step == StepId.RR_AGENCY_RESPONSES),
                     None)
    if responses is not None:
        effects += [SendEmail(InformationRequestMail(agency=agency, due=responses.due))
                    for agency, _ in state.agencies]
    return effects


def record_agency_response(state: CaseState, form: AgencyResponseForm, ctx: Context,
                           item: ItemState) -> list[Effect]:
    involved = [agency for agency, _ in state.agencies]
    if form.agency not in involved:
        raise Refused(f"{form.agency.value} is not an agency involved in {state.case_ref} "
                      f"(involved: {', '.join(sorted(a.value for a in involved))})")
    if state.responded(form.agency):
        return []
    effects: list[Effect] = [RecordAgencyResponse(agency=form.agency, on=form.completed_on)]
    if state.after(effects).agencies_responded == state.agencies_total:
        effects += complete_item(item, form.completed_on, details={})
    return effects


def record_meeting(state: CaseState, form: StepCompletionForm, ctx: Context,
                   item: ItemState) -> list[Effect]:
    return [SetAnchor(Anchor.MEETING, form.completed_on),
            *complete_item(item, form.completed_on, details={"reference": form.reference})]


def progress(state: CaseState) -> int:
    """Everything recorded in the Rapid Review so far: each record makes it one more."""
    done = sum(1 for item in state.steps if item.step in RAPID_REVIEW_STEPS and not item.is_open)
    return done + state.agencies_responded


def describe(state: CaseState, wait: Wait) -> list[str]:
    lines = [f"Agency information received: {state.agencies_responded} of {state.agencies_total}.", ""]
    for item, _rule in wait_items(wait, state):
        lines.append(f"- `{item.step}`: {item.state.value}, due {item.due:%a %d %b %Y} ({item.rule})")
    return lines


AGENCY_RESPONSES = ItemSpec(STEP_RULES[StepId.RR_AGENCY_RESPONSES], STEP_FORMS[StepId.RR_AGENCY_RESPONSES],
                            record=record_agency_response,
                            # Each agency gets its own information request instead.
                            notify_owner=False)
MEETING = ItemSpec(STEP_RULES[StepId.RR_MEETING], STEP_FORMS[StepId.RR_MEETING], record=record_meeting)
REPORT_TO_PANEL = ItemSpec(STEP_RULES[StepId.RR_REPORT_TO_PANEL], STEP_FORMS[StepId.RR_REPORT_TO_PANEL])
RAPID_REVIEW_STEPS = (StepId.RR_AGENCY_RESPONSES, StepId.RR_MEETING, StepId.RR_REPORT_TO_PANEL)

RAPID_REVIEW = Process(
    id="rapid-review",
    title="Rapid Review",
    flow="flows.rapid_review:rapid_review_flow",
    run_name="{case_ref} rapid review",
    items=(AGENCY_RESPONSES, MEETING, REPORT_TO_PANEL),
    waits=(Wait("rapid-review", "Rapid Review", (AGENCY_RESPONSES, MEETING, REPORT_TO_PANEL),
                progress=progress, describe=describe),),
    starts=starts,
    on_start=start,
)
