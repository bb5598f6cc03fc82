"""The Child Safeguarding Practice Review: its own deployment run per case, started when a CSPR is
commissioned (on the Rapid Review's recommendation, or the National Panel's response).

The procedure (`models.processes.cspr`) opened its steps with their due dates in the transaction
that commissioned it; this run waits, suspended, for them to be recorded, stage by stage:
reviewers, terms of reference and IMR requests; IMRs, family engagement and the draft; the final
report, the Panel and publication; then its action plan.
"""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel

from flows.waits import run_waits
from models.enums import StepState
from models.processes.cspr import CSPR


class CsprResult(BaseModel):
    case_ref: str
    steps_done: list[str]


@flow(name="cspr", flow_run_name="{case_ref} cspr", persist_result=True)
def cspr_flow(case_ref: str) -> CsprResult:
    """A case's Child Safeguarding Practice Review, from commissioning to publication and its action
    plan: reviewers, terms of reference, each agency's IMR (checked section by section), family
    engagement, draft and final report, the report to the Panel and the Secretary of State at
    least 7 working days before the planned publication date, and publication. Reminders and
    escalations go by email. Record progress on this run's dashboard form or with `sbu record`."""
    state = run_waits(CSPR, case_ref)
    return CsprResult(case_ref=case_ref, steps_done=[
        item.label for item in state.steps if item.process == CSPR.id and item.state is StepState.DONE])
