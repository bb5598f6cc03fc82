"""The Rapid Review: its own deployment run per case, started by the case flow.

It makes sure the Rapid Review's steps are open with their due dates (so their timers run), then
waits, suspended, for them to be recorded: agency information, the meeting, the report to the
Panel. Each wait is named after the store's progress, so every record, from the dashboard or from
`sbu record`, wakes it to a fresh wait. The outcome (CSPR or not) is the next piece of the roadmap;
this run ends when its steps are done and returns what the outcome step will need.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.flow_runs import suspend_flow_run
from prefect.runtime import flow_run
from pydantic import BaseModel

from flows import descriptions
from flows.case import WAIT_LIMIT
from flows.inputs import RapidReviewStepInput
from models.enums import StepState
from sbu.queries import RAPID_REVIEW_STEPS
from tasks.case_store import open_rapid_review, read_case, record_rapid_review_step
from tasks.prefect_ops import deliver_mail, scrub_run_inputs, sync_timers

MAX_REFUSALS = 20


def rapid_review_wait_key(progress: str, refusals: int) -> str:
    """Named after the store's progress, so each record wakes the run to a fresh wait."""
    base = f"rapid-review-{progress}"
    return base if refusals == 0 else f"{base}-r{refusals + 1}"


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
    logger = get_run_logger()
    run_id = flow_run.get_id()
    assert run_id is not None
    opened = open_rapid_review(case_ref)
    if opened:
        logger.info("%s: opened %s", case_ref, ", ".join(opened))
    sync_timers(case_ref)
    deliver_mail()
    view = read_case(case_ref)
    refusal: str | None = None
    refusals = 0
    while [s for s in view.steps if s.step in RAPID_REVIEW_STEPS and s.state is StepState.OPEN]:
        progress = view.rapid_review_progress
        entry = suspend_flow_run(
            wait_for_input=RapidReviewStepInput.with_initial_data(
                description=descriptions.rapid_review(view, refusal)),
            key=rapid_review_wait_key(progress, refusals), timeout=int(WAIT_LIMIT.total_seconds()))
        refusal = record_rapid_review_step(case_ref, entry)
        view = read_case(case_ref)
        if refusal is None and view.rapid_review_progress == progress:
            refusal = "that was already recorded"
        if refusal is None:
            refusals = 0
            # Waits are named after the store's progress, so no earlier wait is asked again.
            scrub_run_inputs(run_id, "rapid-review-")
        else:
            # An answered key keeps its answer, so the next ask needs a key of its own.
            refusals += 1
            if refusals > MAX_REFUSALS:
                raise RuntimeError(f"{case_ref}: too many refused Rapid Review records")
        sync_timers(case_ref)
        deliver_mail()
    scrub_run_inputs(run_id, "rapid-review-")
    return RapidReviewResult(
        case_ref=case_ref,
        steps_done=[s.step.value for s in view.steps
                    if s.step in RAPID_REVIEW_STEPS and s.state is StepState.DONE],
        agencies_responded=view.agencies_responded, agencies_total=view.agencies_total)
