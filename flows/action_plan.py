"""The action plan: its own deployment run per case, started when the first action is added (from
the Rapid Review or the CSPR). It waits, suspended, while any action is open: for an action to be
closed, a progress note, or another action added. Each action is chased by its own timers."""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel

from flows.waits import run_waits
from models.enums import StepState
from models.processes.action_plan import ACTION, ACTION_PLAN


class ActionPlanResult(BaseModel):
    case_ref: str
    actions: int
    closed: int


@flow(name="action-plan", flow_run_name="{case_ref} action plan", persist_result=True)
def action_plan_flow(case_ref: str) -> ActionPlanResult:
    """A case's action plan: every action from its Rapid Review and CSPR, each owned by an agency
    and due on the date the plan sets, chased by email until it is closed with the reference of its
    evidence. Add actions, note progress and close them on this run's form or with `sbu action`."""
    state = run_waits(ACTION_PLAN, case_ref)
    actions = state.items_of(ACTION.step)
    return ActionPlanResult(case_ref=case_ref, actions=len(actions),
                            closed=sum(1 for item in actions if item.state is StepState.DONE))
