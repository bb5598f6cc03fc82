"""The Rapid Review: its own deployment run per case, started when the case is notified.

The procedure (`models.processes.rapid_review`) opened its steps with their due dates, asked every
involved agency for its information and invited everyone to the meeting in the same transaction
that started it; this run waits, suspended, for them to be recorded: agency information and the
meeting, its outcome, the report to the Panel and its response, the action plan. Each wait is named
after the store's progress, so every record, from the dashboard or from `sbu record`, wakes it to
a fresh wait.
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


@flow(name="rapid-review", flow_run_name="{case_ref} rapid review", persist_result=True)
def rapid_review_flow(case_ref: str) -> RapidReviewResult:
    """A case's Rapid Review: asks each involved agency for its information, sets the meeting on
    the eighth working day (with an invitation, and an update when it moves), takes its outcome
    signed off by the three DSPs, tracks the report to the National Panel and its response, and
    the action plan, with reminders and escalations by email. Record progress on this run's
    dashboard form or with `sbu record`."""
    state = run_waits(RAPID_REVIEW, case_ref)
    return RapidReviewResult(case_ref=case_ref, steps_done=[
        item.label for item in state.steps
        if item.process == RAPID_REVIEW.id and item.state is StepState.DONE])
