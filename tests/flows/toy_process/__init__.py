"""A toy process for the tests: two steps, one of them with an item per involved agency, added to
the registry the way a partnership would add its own (`SBU_PROCESS_MODULES=tests.flows.toy_process`)
and run by `sbu serve`, the bridge and the reconciliation sweep without a line of theirs changed.

It starts once the DSPs have decided (unless on "no further action"); `toy-check` opens then, due
one working day after the decision. Making the check books the visits: it sets the toy's own
anchor, `toy-visit-booked`, from which each agency's `toy-visit` is due fifteen working days on,
and it sends the toy's own email to the SBU (`tests.flows.toy_process.mail`, with its templates in
`templates/`). A visit may be recorded by the SBU or that agency's lead; the check by the toy's own
role, a toy inspector, or the SBU. Everything the toy brings is in this package.
"""

from __future__ import annotations

from prefect import flow

from flows.waits import run_waits
from models.anchors import AnchorSpec
from models.effects import Effect, SendEmail, SetAnchor
from models.enums import Anchor, CasePath, Role, StepState
from models.forms import AgencyResponseForm, StepCompletionForm
from models.procedure import Context, complete_item, open_item, structured_details
from models.registry import AGENCY_LEAD, OpenedBy, Process, Step, Wait
from models.state import CaseState, ItemState
from models.timetable import WorkingDaysAfter
from tests.flows.toy_process.mail import ToyVisitsBookedMail

# The toy's own anchor: the day its visits were booked, which is the day its check was made.
VISIT_BOOKED = Anchor("toy-visit-booked")
INSPECTOR = "toy-inspector"


def record_check(state: CaseState, form: StepCompletionForm, ctx: Context, item: ItemState) -> list[Effect]:
    """The check made books every agency's visit, counted from the day of the check, and tells
    the SBU by email."""
    effects: list[Effect] = [SetAnchor(VISIT_BOOKED, form.completed_on),
                             *complete_item(item, form.completed_on,
                                            details=structured_details(form, "completed_on"))]
    booked = state.after(effects)
    for agency in state.agencies:
        effects += open_item(booked, VISIT, TOY, ctx, subject=agency.value, agency=agency)
    due, _ = VISIT.rule.due(form.completed_on, clocks=ctx.clocks, calendar=ctx.calendar)
    return [*effects, SendEmail(ToyVisitsBookedMail(booked_on=form.completed_on, visits_due=due,
                                                    visits=len(state.agencies)))]


# The check opens when the toy starts (its anchor, the decision, is known by then).
CHECK = Step("toy-check", "Toy check made", owner=Role.SBU, anchor=Anchor.DECISION,
             source="the tests' toy rule", clock=WorkingDaysAfter(1), form=StepCompletionForm,
             recorded_by=(Role.SBU, INSPECTOR), waits=("toy-check",), record=record_check)
# One visit per agency, opened by the check's record (`record_check`).
VISIT = Step("toy-visit", "Toy visit by each agency", owner=Role.SBU, anchor=VISIT_BOOKED,
             source="the tests' toy rule", clock=WorkingDaysAfter(15), form=AgencyResponseForm,
             recorded_by=(Role.SBU, AGENCY_LEAD), subject_field="agency", waits=("toy-visits",),
             opens=OpenedBy(CHECK.step), notify_owner=False)


def starts(state: CaseState) -> bool:
    return state.anchors.get(Anchor.DECISION) is not None and state.path is not CasePath.NO_FURTHER_ACTION


TOY = Process(
    id="toy",
    title="Toy",
    flow="tests.flows.toy_process:toy_flow",
    run_name="{case_ref} toy",
    steps=(CHECK, VISIT),
    waits=(Wait("toy-check", "Toy check"), Wait("toy-visits", "Toy visits")),
    starts=starts,
    tags=("case", "toy"),
    roles=(INSPECTOR,),
    anchors=(AnchorSpec(VISIT_BOOKED, "Toy visits booked"),),
)
PROCESSES = (TOY,)


@flow(name="toy", flow_run_name="{case_ref} toy", persist_result=True)
def toy_flow(case_ref: str) -> int:
    """The toy process: waits for its check, then for every agency's visit."""
    state = run_waits(TOY, case_ref)
    return sum(1 for item in state.steps if item.process == TOY.id and item.state is StepState.DONE)
