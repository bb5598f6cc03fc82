"""Tasks that read or write the case store. Each does one thing through the case service; the
store's own keys make every one safe to re-run when a flow replays or a retry fires."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import ValidationError

from flows.inputs import DspDecisionInput, RapidReviewStepInput, SinSubmissionInput
from models.enums import Interface, StepId
from models.forms import (
    STEP_FORMS,
    DspDecisionForm,
    describe_validation_error,
)
from models.rules import CaseFacts
from sbu import runtime
from sbu.errors import SbuError
from sbu.queries import CaseView
from sbu.service import Actor, TimerOutcome


def _ui_actor(name: str) -> Actor:
    cleaned = " ".join(name.split())[:80]
    return Actor(cleaned or "prefect-ui", Interface.PREFECT_UI)


# Reads are never cached: on every replay the flow must see the store as it is now.
@task(cache_policy=NO_CACHE, persist_result=False, retries=3, retry_delay_seconds=1)
def read_case(case_ref: str) -> CaseView:
    return runtime.service().case_view(case_ref)


@task(cache_policy=NO_CACHE, persist_result=False, retries=3, retry_delay_seconds=1)
def read_facts(case_ref: str) -> CaseFacts:
    return runtime.service().facts(case_ref)


@task(cache_policy=NO_CACHE, persist_result=False, retries=3, retry_delay_seconds=1)
def record_dsp_decision(case_ref: str, decision: DspDecisionInput) -> str | None:
    """Record a decision typed into the dashboard; return why it was refused, or None."""
    try:
        form = DspDecisionForm(sin=decision.sin, rapid_review=decision.rapid_review,
                               rationale=decision.rationale, dsps_present=decision.dsps_present,
                               decided_on=decision.decided_on)
    except ValidationError as error:
        return describe_validation_error(error)
    try:
        runtime.service().decide(case_ref, form, actor=_ui_actor(decision.recorded_by))
    except SbuError as error:
        return str(error)
    return None


def _record_step(case_ref: str, step: StepId, fields: dict[str, object], recorded_by: str) -> str | None:
    """Record a step typed into the dashboard; return why it was refused, or None."""
    try:
        form = STEP_FORMS[step].model_validate(fields)
        runtime.service().record(case_ref, step, form, actor=_ui_actor(recorded_by))
    except ValidationError as error:
        return describe_validation_error(error)
    except SbuError as error:
        return str(error)
    return None


@task(cache_policy=NO_CACHE, persist_result=False, retries=3, retry_delay_seconds=1)
def record_sin_submission(case_ref: str, submission: SinSubmissionInput) -> str | None:
    return _record_step(case_ref, StepId.SIN_SUBMISSION,
                        {"national_ref": submission.national_ref,
                         "completed_on": submission.completed_on}, submission.recorded_by)


@task(cache_policy=NO_CACHE, persist_result=False, retries=3, retry_delay_seconds=1)
def record_rapid_review_step(case_ref: str, entry: RapidReviewStepInput) -> str | None:
    step = StepId(entry.step)
    fields: dict[str, object] = {"completed_on": entry.completed_on}
    if step is StepId.RR_AGENCY_RESPONSES:
        fields["agency"] = entry.agency
    elif entry.reference:
        fields["reference"] = entry.reference
    return _record_step(case_ref, step, fields, entry.recorded_by)


@task(cache_policy=NO_CACHE, persist_result=False, retries=3, retry_delay_seconds=1)
def open_rapid_review(case_ref: str) -> list[str]:
    return [step.value for step in runtime.service().ensure_rapid_review_open(case_ref)]


@task(cache_policy=NO_CACHE, persist_result=False, retries=3, retry_delay_seconds=1)
def fire_timer(timer_key: str) -> TimerOutcome:
    return runtime.service().fire_timer(timer_key)


