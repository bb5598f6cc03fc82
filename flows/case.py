"""The case flow: one run per case, named by its case reference.

It tells the DSPs, waits (suspended, holding no process) for their decision and then, on a SIN
path, for the SIN's submission; the procedure (`models.processes.case`) sets the case on its path,
starts the Rapid Review as its own deployment run, or closes the case. The case store is the
source of truth and this body replays from the top on every resume (`flows.waits`).
"""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel

from flows.waits import run_waits
from models.descriptions import sin_pack
from models.enums import CasePath, CaseStatus, StepState
from models.processes.case import CASE, SIN_SUBMISSION
from models.registry import Wait
from models.state import CaseState
from tasks.prefect.ops import show_markdown


class CaseFlowResult(BaseModel):
    case_ref: str
    path: CasePath | None
    started: list[str]
    closed: bool


def _publish_sin_pack(wait: Wait, state: CaseState) -> None:
    if SIN_SUBMISSION.step in wait.steps and state.state_of(SIN_SUBMISSION.step) is StepState.OPEN:
        show_markdown(f"sin-pack-{state.case_ref.lower()}", sin_pack(state, SIN_SUBMISSION.rule),
                      description=f"SIN pack for {state.case_ref}")


@flow(name="case", flow_run_name="{case_ref}", persist_result=True, log_prints=False)
def case_flow(case_ref: str) -> CaseFlowResult:
    """One serious incident or near miss, from referral to the start of its Rapid Review or its
    closure. Waits on the dashboard for the DSP decision, then for the local authority's
    notification (the SIN submitted, the partners informed); each can also be recorded with
    `sbu decide` and `sbu record`."""
    state = run_waits(CASE, case_ref, before_wait=_publish_sin_pack)
    return CaseFlowResult(case_ref=case_ref, path=state.path, started=list(state.runs),
                          closed=state.status is CaseStatus.CLOSED)
