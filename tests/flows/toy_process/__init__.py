"""A toy process for the tests: two steps, one of them with an item per involved agency, added to
the registry the way a partnership would add its own (`SBU_PROCESS_MODULES=tests.flows.toy_process`)
and run by `sbu serve`, the bridge and the reconciliation sweep without a line of theirs changed.

It starts once the DSPs have decided (unless on "no further action"); `toy-check` is due one
working day after the decision. Making the check books the visits: it sets the toy's own anchor,
`toy-visit-booked`, from which each agency's `toy-visit` is due fifteen working days on, and it
sends the toy's own email to the SBU (`tests.flows.toy_process.mail`, with its templates in
`templates/`). Everything the toy brings is in this package.
"""

from __future__ import annotations

from prefect import flow

from flows.waits import run_waits
from models.anchors import AnchorSpec
from models.effects import Effect, SendEmail, SetAnchor
from models.enums import Anchor, CasePath, Role, StepState
from models.forms import AgencyResponseForm, StepCompletionForm
from models.procedure import Context, complete_item, open_item, structured_details
from models.registry import ItemSpec, Process, Wait
from models.state import CaseState, ItemState
from models.timetable import StepRule, WorkingDaysAfter
from tests.flows.toy_process.mail import ToyVisitsBookedMail

# The toy's own anchor: the day its visits were booked, which is the day its check was made.
VISIT_BOOKED = Anchor("toy-visit-booked")


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


CHECK = ItemSpec(StepRule("toy-check", "Toy check made", Role.SBU, Anchor.DECISION, "the tests' toy rule",
                          WorkingDaysAfter(1)), StepCompletionForm, record=record_check)
VISIT = ItemSpec(StepRule("toy-visit", "Toy visit by each agency", Role.SBU, VISIT_BOOKED,
                          "the tests' toy rule", WorkingDaysAfter(15)), AgencyResponseForm,
                 subject_field="agency", notify_owner=False)


def starts(state: CaseState) -> bool:
    return state.anchors.get(Anchor.DECISION) is not None and state.path is not CasePath.NO_FURTHER_ACTION


def start(state: CaseState, ctx: Context) -> list[Effect]:
    # The visits open when the check books them.
    return open_item(state, CHECK, TOY, ctx)


TOY = Process(
    id="toy",
    title="Toy",
    flow="tests.flows.toy_process:toy_flow",
    run_name="{case_ref} toy",
    items=(CHECK, VISIT),
    waits=(Wait("toy-check", "Toy check", (CHECK,)), Wait("toy-visits", "Toy visits", (VISIT,))),
    starts=starts,
    on_start=start,
    tags=("case", "toy"),
    anchors=(AnchorSpec(VISIT_BOOKED, "Toy visits booked"),),
)
PROCESSES = (TOY,)


@flow(name="toy", flow_run_name="{case_ref} toy", persist_result=True)
def toy_flow(case_ref: str) -> int:
    """The toy process: waits for its check, then for every agency's visit."""
    state = run_waits(TOY, case_ref)
    return sum(1 for item in state.steps if item.process == TOY.id and item.state is StepState.DONE)
