"""Tasks that read or write the case store. Each does one thing through the case service; the
store's own keys make every one safe to re-run when a flow replays or a retry fires."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.input import RunInput
from pydantic import ValidationError

from models.access import unsealed
from models.enums import Interface
from models.errors import SbuError
from models.refusals import field_titles, rule_in_words, validation_in_words
from models.registry import Act
from models.state import CaseState
from tasks import runtime
from tasks.run_inputs import RECORDED_BY, choice_of, domain_form, recorded_by
from tasks.service import Actor, PassOutcome

NOT_THROUGH_GATEWAY = ("this form must be submitted through the partnership's sign-in (the gateway); "
                       "nothing was recorded")


def _ui_actor(name: str, *, run_id: str, key: str) -> Actor | None:
    """Who answered a dashboard form. Behind the sign-in gateway (a gateway key is set), the user
    it sealed into `recorded_by`, or None when the answer did not come through it; without one,
    the free text typed in the "Recorded by" box."""
    gateway_key = runtime.settings().gateway_key
    if gateway_key is not None:
        user = unsealed(gateway_key.get_secret_value().encode(), name, run_id=run_id, pause_key=key)
        return Actor(user, Interface.PREFECT_UI) if user is not None else None
    cleaned = " ".join(name.split())  # `recorded_by` has already refused a name over the limit
    return Actor(cleaned or "prefect-ui", Interface.PREFECT_UI)


# Reads are never cached: on every replay the flow must see the store as it is now.
@task(cache_policy=NO_CACHE, persist_result=False, retries=3, retry_delay_seconds=1)
def read_case(case_ref: str) -> CaseState:
    runtime.hold_point("read-case", case_ref)  # a fault test's seam; nothing unless one asks
    return runtime.service().case_view(case_ref)


@task(cache_policy=NO_CACHE, persist_result=False, retries=3, retry_delay_seconds=1)
def record_answer(case_ref: str, process: str, wait: str, answer: RunInput, *, run_id: str,
                  key: str) -> str | None:
    """Record an answer typed into the dashboard form of `process`'s `wait` (the run `run_id`
    suspended on `key`), validated into its domain form; return why it was refused, or None. The
    reason names each field by its title on the form (`models.refusals`), never a value typed."""
    found = runtime.registry().process(process).wait_named(wait)
    asked = choice_of(found, answer).form
    titles = {RECORDED_BY: "Recorded by"}
    try:
        actor = _ui_actor(recorded_by(answer), run_id=run_id, key=key)
        if actor is None:
            return NOT_THROUGH_GATEWAY
        choice, form = domain_form(found, answer)
        if isinstance(choice, Act):
            runtime.service().act(case_ref, choice.name, form, actor=actor)
        else:
            runtime.service().record(case_ref, choice.step, form, actor=actor)
    except ValidationError as error:
        return validation_in_words(error, asked, extra_titles=titles)
    except SbuError as error:
        return rule_in_words(str(error), {**field_titles(asked), **titles})
    return None


# No retries: a pass that failed part-way has committed the cases it finished, and the next pass
# (planned again at once, since the timers left are still due) takes the rest.
@task(cache_policy=NO_CACHE, persist_result=False)
def fire_due_timers() -> PassOutcome:
    """Fire every timer due now, case by case (`CaseService.fire_due_timers`)."""
    return runtime.service().fire_due_timers()
