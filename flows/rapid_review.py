"""The Rapid Review: its own deployment run per case, started when the case is notified.

The procedure (`models.processes.rapid_review`) opened its steps with their due dates and asked
every involved agency for its information in the same transaction that started it; this run waits,
suspended, for them to be recorded: agency information, the meeting, the report to the Panel.
Each wait is named after the store's progress, so every record, from the dashboard or from
`sbu record`, wakes it to a fresh wait.
"""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel

from flows.waits import run_waits
from models.enums import StepState
from models.processes.rapid_review import RAPID_REVIEW


class RapidReviewResult(BaseModel):
    case_ref: str
    steps_done: list[str]
    agencies_responded: int
    agencies_total: int


@flow(name="rapid-review", flow_run_name="{case_ref} rapid review", persist_result=True)
def rapid_review_flow(case_ref: str) -> RapidReviewResult:
    """A case's Rapid Review: asks each involved agency for its information, tracks the meeting
    on the eighth working day and the report to the National Panel, with reminders and escalations
    by email. Record progress on this run's dashboard form or with `sbu record`."""
    state = run_waits(RAPID_REVIEW, case_ref)
    owned = {spec.step for spec in RAPID_REVIEW.items}
    return RapidReviewResult(
        case_ref=case_ref,
        steps_done=[item.step for item in state.steps if item.step in owned and item.state is StepState.DONE],
        agencies_responded=state.agencies_responded, agencies_total=state.agencies_total)
