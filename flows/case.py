"""The case flow: one run per case, named by its case reference.

It tells the DSPs, waits (suspended, holding no process) for their decision, and sets the case on
its path: the SIN and its submission, the Rapid Review as its own deployment run, or closure. The
case store is the source of truth and this body replays from the top on every resume, so before
each wait it asks the store whether the step is already recorded (by `sbu` or an earlier replay)
and only waits if it is not.
"""

from __future__ import annotations

from datetime import timedelta

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.flow_runs import suspend_flow_run
from prefect.runtime import flow_run
from pydantic import BaseModel

from flows import descriptions
from flows.inputs import DspDecisionInput, SinSubmissionInput
from models.enums import CasePath, CaseStatus, StepId, StepState
from sbu.queries import CaseView
from tasks.case_store import read_case, read_facts, record_dsp_decision, record_sin_submission
from tasks.prefect_ops import deliver_mail, scrub_run_inputs, start_rapid_review, sync_timers

# A suspension's timeout fails the run when it expires (DESIGN.md §3), so it is never the
# statutory deadline: durable timers are. It only has to outlast any real wait.
WAIT_LIMIT = timedelta(days=730)
MAX_FORM_ATTEMPTS = 20


class CaseFlowResult(BaseModel):
    case_ref: str
    path: CasePath | None
    rapid_review_run_id: str | None = None
    closed: bool


def _wait_key(base: str, attempt: int) -> str:
    # A refused answer is answered again under a new key: a key, once answered, keeps its answer.
    return base if attempt == 1 else f"{base}-{attempt}"


@flow(name="case", flow_run_name="{case_ref}", persist_result=True, log_prints=False)
def case_flow(case_ref: str) -> CaseFlowResult:
    """One serious incident or near miss, from referral to the start of its Rapid Review or its
    closure. Waits on the dashboard for the DSP decision and the SIN submission record; both can
    also be recorded with `sbu decide` and `sbu record`."""
    logger = get_run_logger()
    run_id = flow_run.get_id()
    assert run_id is not None
    view = read_case(case_ref)
    sync_timers(case_ref)
    deliver_mail()

    refusal: str | None = None
    attempt = 1
    while not view.decided:
        if attempt > MAX_FORM_ATTEMPTS:
            raise RuntimeError(f"{case_ref}: too many refused decisions on the dashboard")
        description = descriptions.dsp_decision(view, read_facts(case_ref), refusal)
        decision = suspend_flow_run(
            wait_for_input=DspDecisionInput.with_initial_data(description=description),
            key=_wait_key("dsp-decision", attempt), timeout=int(WAIT_LIMIT.total_seconds()))
        refusal = record_dsp_decision(case_ref, decision)
        attempt += 1
        view = read_case(case_ref)
    scrub_run_inputs(run_id, "dsp-decision")
    logger.info("%s: DSP decision recorded, path %s", case_ref, view.path)
    sync_timers(case_ref)
    deliver_mail()

    match view.path:
        case CasePath.SIN_AND_RAPID_REVIEW | CasePath.SIN_ONLY:
            create_markdown_artifact(key=f"sin-pack-{case_ref.lower()}",
                                     markdown=descriptions.sin_pack(view, read_facts(case_ref)),
                                     description=f"SIN pack for {case_ref}")
            view = _wait_for_sin_submission(case_ref, view)
            scrub_run_inputs(run_id, "sin-submission")
            sync_timers(case_ref)
            deliver_mail()
            if view.path is CasePath.SIN_ONLY:
                return CaseFlowResult(case_ref=case_ref, path=view.path,
                                      closed=view.status is CaseStatus.CLOSED)
            rapid_review_run = start_rapid_review(case_ref)
            return CaseFlowResult(case_ref=case_ref, path=view.path,
                                  rapid_review_run_id=rapid_review_run, closed=False)
        case CasePath.RAPID_REVIEW_ONLY | CasePath.NEAR_MISS_RAPID_REVIEW:
            rapid_review_run = start_rapid_review(case_ref)
            return CaseFlowResult(case_ref=case_ref, path=view.path,
                                  rapid_review_run_id=rapid_review_run, closed=False)
        case CasePath.NO_FURTHER_ACTION:
            logger.info("%s: closed, no further action", case_ref)
            return CaseFlowResult(case_ref=case_ref, path=view.path, closed=True)
        case _:
            raise RuntimeError(f"{case_ref}: decided but no path in the store")


def _wait_for_sin_submission(case_ref: str, view: CaseView) -> CaseView:
    refusal: str | None = None
    attempt = 1
    while view.state_of(StepId.SIN_SUBMISSION) is StepState.OPEN:
        if attempt > MAX_FORM_ATTEMPTS:
            raise RuntimeError(f"{case_ref}: too many refused SIN records on the dashboard")
        submission = suspend_flow_run(
            wait_for_input=SinSubmissionInput.with_initial_data(
                description=descriptions.sin_submission(view, refusal)),
            key=_wait_key("sin-submission", attempt), timeout=int(WAIT_LIMIT.total_seconds()))
        refusal = record_sin_submission(case_ref, submission)
        attempt += 1
        view = read_case(case_ref)
    return view
