"""Waking a case's runs: resuming a run suspended on a wait the store shows answered, and, after
a change made outside any run (`sbu decide`, the desk, the gateway), everything the change asks of
Prefect."""

from __future__ import annotations

import time
from enum import Enum
from typing import TYPE_CHECKING, Any
from uuid import UUID

from models.registry import Process
from models.state import CaseState
from tasks import dashboard
from tasks.prefect import hooks
from tasks.prefect.connection import NO_SERVER_NOTE, not_told, prefect_client
from tasks.prefect.runs import ensure_runs, trigger_delivery
from tasks.prefect.timers import sync_timers
from tasks.run_inputs import run_input_for, wake_up_answer
from tasks.service import CaseService

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import FlowRun


def waiting_key(run: FlowRun) -> str | None:
    """The key a suspended run waits on, or None if it is not waiting."""
    from prefect.client.schemas.objects import StateType

    if run.state is None or run.state.type != StateType.PAUSED:
        return None
    return run.state.state_details.pause_key


# Prefect's server answers 503 when its SQLite database is busy, and Prefect's client then waits
# 2 s before it tries again. Prefect's own server opens the resume endpoint's transaction DEFERRED
# and reads before it writes, so any other write committed in between fails it that way: with
# other runs writing states, logs and events, that was one resume in four, each 2 s late, which
# alone breaks the 2 s target from a decision to its case moving. The server `sbu serve` starts
# no longer answers so (its transactions take the write lock up front: `hooks.install_sqlite_write_lock`),
# but a server it is pointed at with PREFECT_API_URL may be a plain `prefect server start` on
# SQLite. The answer is safe to retry at once (the transaction was rolled back), so we retry it
# quickly ourselves first.
BUSY_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8)
ACCEPTED = "ACCEPT"  # Prefect's word for a resume it took


def resume_run(client: SyncPrefectClient, run_id: UUID, run_input: dict[str, Any]) -> bool:
    """Resume a suspended run with `run_input`, retrying a busy server quickly; whether Prefect
    accepted it. Prefect answers a resume it refuses (the run is not waiting, or waits with no form
    stored) with success and a REJECT in the body, so the body is what says.

    Posts to the same REST endpoint as Prefect's client, with the same headers. Anything other
    than a busy answer, and a server still busy after the quick retries, is handed to Prefect's
    client, which keeps its own retries and raises its own errors.
    """
    import httpx

    try:
        with httpx.Client(base_url=client.api_url, headers=hooks.client_headers(client),
                          timeout=httpx.Timeout(10.0)) as http:
            for delay in (*BUSY_RETRY_DELAYS, None):
                answer = http.post(hooks.resume_path(run_id), json={"run_input": run_input})
                if answer.status_code != httpx.codes.SERVICE_UNAVAILABLE:
                    if answer.is_success:
                        return _accepted(answer.json())
                    break
                if delay is not None:
                    time.sleep(delay)
    except (httpx.HTTPError, ValueError):
        pass  # e.g. TLS settings only Prefect's client knows: let it try
    return client.resume_flow_run(run_id, run_input=run_input).status.value == ACCEPTED


def _accepted(body: object) -> bool:
    return isinstance(body, dict) and body.get("status") == ACCEPTED


def resume_if_waiting(client: SyncPrefectClient, service: CaseService, run_id: UUID, *,
                      process: Process, case_ref: str, wait_seconds: float = 0.0) -> Resumed:
    """Resume `run_id`, the case's run of `process`, if the wait it is suspended on has been
    answered in the store. A run still on its way to a wait is given `wait_seconds` to get there
    (it checks the store before waiting, so one that arrives after the change never waits at all).
    A run that cannot be resumed (`resume_waiting`) is cancelled, so that `ensure_run` replaces it
    with a run that replays from the store."""
    from prefect.client.schemas.objects import StateType

    deadline = time.monotonic() + wait_seconds
    while True:
        run = client.read_flow_run(run_id)
        if waiting_key(run) is not None:
            return resume_waiting(client, service, run, process=process, case_ref=case_ref)
        state = run.state.type if run.state else None
        if state not in (StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING) or \
                time.monotonic() >= deadline:
            return Resumed.LEFT
        time.sleep(0.1)


class Resumed(Enum):
    """What `resume_waiting` did with a suspended run."""

    RESUMED = "resumed"
    CANCELLED = "cancelled"  # waiting on a key its process no longer has: to be replaced
    LEFT = "left"  # still waiting on an open question, or not waiting at all


def resume_waiting(client: SyncPrefectClient, service: CaseService, run: FlowRun, *,
                   process: Process, case_ref: str, state: CaseState | None = None) -> Resumed:
    """`resume_if_waiting` for a run already read; `state`, the case as the store has it, if
    already read too. A run waiting on a key none of its process's waits has (left by an older
    version of the process), or on a form Prefect refuses to take an answer to, is cancelled, to
    be replaced (`ensure_run`) by a run that replays from the store."""
    from prefect.states import Cancelled

    key = waiting_key(run)
    if key is None:
        return Resumed.LEFT
    wait = process.wait_for_key(key)
    if wait is None:
        client.set_flow_run_state(run.id, Cancelled(message="waiting on a form this version "
                                                    "no longer has; replaced"), force=True)
        return Resumed.CANCELLED
    if not wait.answered(key, state if state is not None else service.case_view(case_ref)):
        return Resumed.LEFT
    if resume_run(client, run.id, wake_up_answer(stored_schema(client, run.id, key)
                                                 or run_input_for(wait).model_json_schema())):
        return Resumed.RESUMED
    if waiting_key(client.read_flow_run(run.id)) != key:
        return Resumed.LEFT  # it moved on meanwhile (another change woke it first)
    # Still waiting on that form, and Prefect refuses to resume it: a run stopped between
    # suspending and storing its form (serve killed then) waits with no form, and every resume
    # is refused. Replaced by a run that replays from the store, the case moves on.
    client.set_flow_run_state(run.id, Cancelled(message="its form cannot be answered; replaced"), force=True)
    return Resumed.CANCELLED


def stored_schema(client: SyncPrefectClient, run_id: UUID, key: str) -> dict[str, Any] | None:
    """The schema of the form the run waits on with `key`, as Prefect stores it (the case's own:
    its choices narrowed to the case), or None if Prefect has none."""
    import json

    import httpx

    from tasks.prefect.hooks import schema_key

    try:
        stored = client.read_flow_run_input(run_id, schema_key(key))
    except httpx.HTTPStatusError:  # not found
        return None
    value = json.loads(stored) if stored else None
    return value if isinstance(value, dict) else None


def wake_case(service: CaseService, case_ref: str, *, step: str | None = None,
              wait_seconds: float = 15.0) -> str | None:
    """After `sbu decide`, `sbu record`, an act or `sbu retime`: create the runs of any process the
    change started, resume every run of the case whose wait the change answered (a step's own
    process waits for it; another process's form may offer it too), schedule and cancel timers to
    match the store, and deliver the mail the change queued."""
    with prefect_client(service.settings) as client:
        if client is None:
            return NO_SERVER_NOTE
        note = None
        try:
            told = service.case_view(case_ref).runs
            runs = ensure_runs(client, service, case_ref)
            owner = service.registry.process_of(step) if step is not None else None
            outcomes = set()
            for process_id, run_id in runs.items():
                # The recorded step's own process may still be on its way to its wait; a run this
                # change has only just created will read the store before it waits.
                mine = owner is not None and owner.id == process_id and told.get(process_id) is not None
                outcomes.add(resume_if_waiting(client, service, run_id,
                                               process=service.registry.process(process_id),
                                               case_ref=case_ref, wait_seconds=wait_seconds if mine else 0.0))
            if Resumed.CANCELLED in outcomes:
                runs = ensure_runs(client, service, case_ref)  # its replacement, now
            if not runs:
                note = "note: the case has no flow run yet; `sbu serve` will create it"
            # A resumed run only reads the store and waits again: what else the change needs
            # Prefect to know is told here, whether a run was resumed or not.
            sync_timers(client, service)
            trigger_delivery(client)
            dashboard.show_case(client, service, case_ref, runs=runs.values())
        except Exception as error:  # noqa: BLE001 - the store is the truth; reconcile repairs this
            return not_told(error)
        return note
