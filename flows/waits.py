"""How a process's flow waits for people: the one loop every process flow runs.

The flow asks the store which of its process's waits is open (`Process.current_wait`), suspends
on it (holding no process) with the form derived from the domain's and the Markdown derived from
the rules, records the answer through the case service, and asks the store again. A run resumed
by `sbu` after recording a step itself finds the step done and moves on without reading the
placeholder it was woken with. The body replays from the top on every resume and is deterministic:
every wait is keyed by what the store shows (`Wait.base_key`), and side effects are tasks whose
store keys make them safe to repeat.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from prefect import get_run_logger
from prefect.flow_runs import suspend_flow_run
from prefect.runtime import flow_run
from pydantic import BaseModel, ValidationError

from models.descriptions import form_markdown
from models.registry import Process, Wait
from models.state import CaseState
from tasks.case_store import read_case, record_answer
from tasks.prefect.ops import request_delivery, scrub_run_inputs, stored_inputs, sync_case
from tasks.run_inputs import case_form, is_wake_up, run_input_for
from tasks.runtime import registry, settings

# A suspension's timeout fails the run when it expires (docs/architecture.md), so it is never the
# statutory deadline: durable timers are. It only has to outlast any real wait.
WAIT_LIMIT = timedelta(days=730)
MAX_FORM_ATTEMPTS = 20

BeforeWait = Callable[[Wait, CaseState], None]


def run_waits(process: Process, case_ref: str, *, before_wait: BeforeWait | None = None) -> CaseState:
    """Wait for each of `process`'s open waits in turn until none is open; return the case. The
    process is the registry's (`SBU_PROCESS_MODULES` may add steps to it, and so to its forms)."""
    process = registry().process(process.id)
    logger = get_run_logger()
    run_id = flow_run.get_id()
    assert run_id is not None
    # From its start to its wait a run only reads the store: whoever made the change it was
    # resumed for (or created for) has told Prefect the rest and asked for its mail to be sent.
    state = read_case(case_ref)
    scrubbed: set[str] = set()
    attempts: dict[str, int] = {}
    refusal: str | None = None
    # The answer asked again, whose choices (never its typed text) the next form fills in again.
    refused: BaseModel | None = None
    imr_sections = settings().reviews.imr_sections
    while True:
        # What people typed on a form the flow has moved past is in the store now: remove it
        # from Prefect (docs/architecture.md, "Data protection"). A wait still open keeps its answers until
        # they are read.
        for done in process.waits:
            if done.name not in scrubbed and not done.is_open(state):
                if stored := stored_inputs(str(run_id), done.name):
                    refusal = _unread(process, case_ref, done, str(run_id), stored) or refusal
                    scrub_run_inputs(run_id, done.name)
                scrubbed.add(done.name)
        wait = process.current_wait(state)
        if wait is None:
            return state
        base = wait.base_key(state)
        assert base is not None
        attempt = attempts.get(base, 1)
        if attempt > MAX_FORM_ATTEMPTS:
            raise RuntimeError(f"{case_ref}: too many refused answers to {wait.name}")
        if before_wait is not None:
            before_wait(wait, state)
        form = case_form(wait, state, imr_sections=imr_sections, refused=refused)
        form = form.with_initial_data(description=form_markdown(wait, state, refusal))
        key = wait.key(base, attempt)
        answer = suspend_flow_run(wait_for_input=form, key=key, timeout=int(WAIT_LIMIT.total_seconds()))
        refusal = record_answer(case_ref, process.id, wait.name, answer, run_id=str(run_id), key=key)
        state = read_case(case_ref)
        if wait.base_key(state) == base:
            # Refused, or nothing new: asked again under a key of its own, since an answered key
            # keeps its answer.
            attempts[base] = attempt + 1
            refusal = refusal or "That was already recorded."
            refused = answer
            continue
        refused = None
        if refusal is not None:
            # Answered another way meanwhile (a conflicting decision by `sbu`, say): the case has
            # moved on without this answer, and whoever gave it is told so on the next form (the
            # refusal names the case and the step, never a value typed or who typed it).
            logger.warning("%s: an answer to %s was not recorded: %s", case_ref, wait.name, refusal)
            refusal = f"The answer to “{wait.title}” was not recorded: {refusal}"
        logger.info("%s: %s answered (path %s)", case_ref, wait.name,
                    state.path.value if state.path else "none yet")
        # The answer is in the store: remove it from Prefect before anything else happens (the
        # processes this record starts are told next). A wait counting progress moves to a fresh
        # key, so none of its answered keys is read again either.
        scrub_run_inputs(run_id, wait.name)
        if not wait.is_open(state):
            scrubbed.add(wait.name)
        # This run made the change (an answer typed on the dashboard): it tells Prefect the rest.
        sync_case(case_ref)
        request_delivery()


def _unread(process: Process, case_ref: str, wait: Wait, run_id: str,
            stored: list[tuple[str, dict[str, Any] | None]]) -> str | None:
    """Why a dashboard answer to `wait` (among what Prefect still `stored` for it) that the flow
    never read was not recorded, or None.

    The run replays from the top when resumed. If the step was recorded another way (by `sbu`,
    say) between the dashboard's answer resuming the run and the replay reading the store, the
    flow finds the wait done and never reads that answer. It is put to the case service now,
    which refuses it or finds it already there, so whoever sent it is told on the next form
    rather than their answer vanishing. `sbu`'s own wake-up answer is skipped: it says nothing."""
    form = run_input_for(wait)
    refusal: str | None = None
    for key, value in stored:
        if value is None or is_wake_up(value):
            continue
        try:
            answer = form.model_validate(value)
        except ValidationError:
            refusal = refusal or "That answer could not be read; nothing was recorded from it."
            continue
        refusal = record_answer(case_ref, process.id, wait.name, answer, run_id=run_id, key=key) or refusal
    if refusal is not None:
        get_run_logger().warning("%s: an answer to %s was not recorded: %s", case_ref, wait.name, refusal)
        return f"The answer to “{wait.title}” was not recorded: {refusal}"
    return None
