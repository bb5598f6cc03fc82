"""Creating the flow runs of a case's processes, replacing those Prefect gave up on or lost, and
abandoning those a stopped `sbu serve` left mid-way."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from models.dashboard import case_tags
from models.enums import CaseStatus, RunLoss
from models.processes import DEADLINE_CHECK, DELIVER_OUTBOX, RECONCILE
from models.registry import Process
from models.state import CaseState
from tasks.prefect.connection import (
    NO_SERVER_NOTE,
    deployment_id,
    forget_deployment_ids,
    not_told,
    prefect_client,
)
from tasks.prefect.timers import sync_timers
from tasks.service import CaseService

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import FlowRun

DEADLINE_CHECK_DEPLOYMENT = DEADLINE_CHECK.deployment
OUTBOX_DEPLOYMENT = DELIVER_OUTBOX.deployment
RECONCILE_DEPLOYMENT = RECONCILE.deployment


def create_case_run(service: CaseService, case_ref: str) -> str | None:
    """Create the case's flow runs (each keyed by the case and process, so each can exist only
    once) and schedule its timers. Returns a note for the user when Prefect could not be told:
    the store has committed, so that is never an error."""
    with prefect_client(service.settings) as client:
        if client is None:
            return NO_SERVER_NOTE
        try:
            # The case run's first act is to deliver the mail the referral queued.
            ensure_runs(client, service, case_ref)
            sync_timers(client, service, case_ref=case_ref)
        except Exception as error:  # noqa: BLE001 - the store is the truth; reconcile repairs this
            return not_told(error)
    return None


def ensure_runs(client: SyncPrefectClient, service: CaseService, case_ref: str) -> dict[str, UUID]:
    """A live flow run for every process the case has started, by process."""
    view = service.case_view(case_ref)
    return {process_id: ensure_run(client, service, view, service.registry.process(process_id))
            for process_id in view.runs}


def ensure_run(client: SyncPrefectClient, service: CaseService, view: CaseState, process: Process) -> UUID:
    """The case's flow run of `process`, created if it has none. A run that Prefect lost (deleted),
    or that failed, crashed or was cancelled (Prefect gave up on it; the store has not) is replaced
    by a new run, keyed after the one it replaces so that replacing is idempotent too. The new run
    replays from the store. A run lost, failed or crashed is a disagreement between the store and
    Prefect: the SBU is alerted by email (a run we cancelled ourselves, to replace it, is not)."""
    current = view.runs.get(process.id)
    run_id, loss = _live_run(client, current, closed=view.status is CaseStatus.CLOSED)
    if run_id is not None:
        return run_id
    key = process.idempotency_key(view.case_ref) + (f"-after-{current}" if current else "")
    run = create_from_deployment(
        client, process.deployment, parameters={"case_ref": view.case_ref},
        name=process.name_run(view.case_ref), idempotency_key=key, tags=case_tags(view, service.registry))
    if current != str(run.id):
        if current is not None and loss is not None:
            service.replace_run(view.case_ref, process.id, str(run.id), loss=loss, replaced=current)
        else:
            service.set_run(view.case_ref, process.id, str(run.id))
    return run.id


def create_from_deployment(client: SyncPrefectClient, deployment: str, **options: Any) -> FlowRun:
    """A run of `deployment`, by name; its id cached, and asked again once if the server no longer
    knows the cached one."""
    from prefect.exceptions import ObjectNotFound

    try:
        return client.create_flow_run_from_deployment(deployment_id(client, deployment), **options)
    except ObjectNotFound:
        forget_deployment_ids()
        return client.create_flow_run_from_deployment(deployment_id(client, deployment), **options)


def _live_run(client: SyncPrefectClient, run_id: str | None, *,
              closed: bool) -> tuple[UUID | None, RunLoss | None]:
    """`run_id` if that run exists and Prefect has not given up on it; else None, with how Prefect
    lost it when that is a fault (not for a run cancelled on purpose)."""
    from prefect.client.schemas.objects import StateType
    from prefect.exceptions import ObjectNotFound

    if run_id is None:
        return None, None
    try:
        run = client.read_flow_run(UUID(run_id))
    except ObjectNotFound:
        return None, RunLoss.MISSING
    state = run.state.type if run.state is not None else None
    if closed or state not in (StateType.FAILED, StateType.CRASHED, StateType.CANCELLED):
        return run.id, None
    losses = {StateType.FAILED: RunLoss.FAILED, StateType.CRASHED: RunLoss.CRASHED}
    return None, losses.get(state)


def trigger_delivery(client: SyncPrefectClient) -> None:
    """Deliver the outbox now rather than at the next scheduled sweep."""
    create_from_deployment(client, OUTBOX_DEPLOYMENT, name="deliver-outbox (after a change)")
