"""A toy process for the tests: two steps, one of them with an item per involved agency, added to
the registry the way a partnership would add its own (`SBU_PROCESS_MODULES=tests.flows.toy_process`)
and run by `sbu serve`, the bridge and the reconciliation sweep without a line of theirs changed.

It starts once the DSPs have decided (unless on "no further action"); `toy-check` is due one
working day after the decision, and each agency's `toy-visit` fifteen. A visit may be recorded by
the SBU or that agency's lead; the check by the toy's own role, a toy inspector, or the SBU.
"""

from __future__ import annotations

from prefect import flow

from flows.waits import run_waits
from models.effects import Effect
from models.enums import Anchor, CasePath, Role, StepState
from models.forms import AgencyResponseForm, StepCompletionForm
from models.procedure import Context, open_item
from models.registry import AGENCY_LEAD, Process, Step, Wait
from models.state import CaseState
from models.timetable import WorkingDaysAfter

INSPECTOR = "toy-inspector"
CHECK = Step("toy-check", "Toy check made", owner=Role.SBU, anchor=Anchor.DECISION,
             source="the tests' toy rule", clock=WorkingDaysAfter(1), form=StepCompletionForm,
             recorded_by=(Role.SBU, INSPECTOR),
             waits=("toy-check",))
VISIT = Step("toy-visit", "Toy visit by each agency", owner=Role.SBU, anchor=Anchor.DECISION,
             source="the tests' toy rule", clock=WorkingDaysAfter(15), form=AgencyResponseForm,
             recorded_by=(Role.SBU, AGENCY_LEAD), subject_field="agency", waits=("toy-visits",),
             notify_owner=False)


def starts(state: CaseState) -> bool:
    return state.anchors.get(Anchor.DECISION) is not None and state.path is not CasePath.NO_FURTHER_ACTION


def start(state: CaseState, ctx: Context) -> list[Effect]:
    # The check opens by itself (on start, its anchor known); a visit per agency is opened here.
    effects: list[Effect] = []
    for agency in state.agencies:
        effects += open_item(state, VISIT, TOY, ctx, subject=agency.value, agency=agency)
    return effects


TOY = Process(
    id="toy",
    title="Toy",
    flow="tests.flows.toy_process:toy_flow",
    run_name="{case_ref} toy",
    steps=(CHECK, VISIT),
    waits=(Wait("toy-check", "Toy check"), Wait("toy-visits", "Toy visits")),
    starts=starts,
    on_start=start,
    tags=("case", "toy"),
    roles=(INSPECTOR,),
)
PROCESSES = (TOY,)


@flow(name="toy", flow_run_name="{case_ref} toy", persist_result=True)
def toy_flow(case_ref: str) -> int:
    """The toy process: waits for its check, then for every agency's visit."""
    state = run_waits(TOY, case_ref)
    return sum(1 for item in state.steps if item.process == TOY.id and item.state is StepState.DONE)
