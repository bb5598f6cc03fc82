"""Planning the timer pass: one scheduled run of `timer-pass` at the time the store's next timer
comes due, and no other, so that between passes nothing runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from models.calendar import LONDON
from models.processes import TIMER_PASS
from tasks.prefect.connection import deployment_id
from tasks.service import CaseService

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import FlowRun

# A scheduled pass this close to the time wanted is the pass wanted (Prefect keeps the time it is
# given, but a plan made on another process's clock may differ by a rounding).
SAME_TIME = timedelta(seconds=1)
# A timer this long past its time with no pass under way has lost its pass; a pass Pending this
# long never started. Prefect's runner takes a run some seconds before its time and starts its
# process, which then waits on the server: if the server stops meanwhile, the process leaves and
# the runner cannot say so, so the run stays Pending for ever and the store still names it.
PASS_LATE = timedelta(seconds=60)


def sync_timers(client: SyncPrefectClient, service: CaseService) -> int:
    """Make Prefect's plan match the store's timers: one Scheduled `timer-pass` run at the wall
    time of the earliest timer scheduled (at once, if that is past), and no other Scheduled pass
    (one earlier would find nothing due; one later is the plan of a pass that has since run).
    With no timer scheduled, no pass. Returns how many runs it created or cancelled.

    Safe to call from any process at any time: two calls racing may both create a run, and the
    next call cancels one of them; a pass that finds nothing due fires nothing."""
    from prefect.states import Cancelled, Scheduled

    first = service.earliest_timer()
    deployment = deployment_id(client, TIMER_PASS.deployment)
    wanted = service.clock.wall_time_for(first) if first is not None else None
    keep: FlowRun | None = None
    changed = 0
    for run in _scheduled_passes(client, deployment):
        at = run.state.state_details.scheduled_time if run.state is not None else None
        if keep is None and wanted is not None and at is not None and abs(at - wanted) <= SAME_TIME:
            keep = run
            continue
        client.set_flow_run_state(run.id, Cancelled(message="the next pass is planned for another time"),
                                  force=True)
        changed += 1
    if first is not None and wanted is not None and keep is None:
        keep = client.create_flow_run_from_deployment(
            deployment, name=f"timer-pass {first.astimezone(LONDON):%a %d %b %H:%M}",
            state=Scheduled(scheduled_time=wanted))
        changed += 1
    service.mark_timers_told(str(keep.id) if keep is not None else None, first_due=first)
    return changed


def _scheduled_passes(client: SyncPrefectClient, deployment: UUID) -> list[FlowRun]:
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    return client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=[deployment]),
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))),
        sort=FlowRunSort.EXPECTED_START_TIME_ASC, limit=50)


def replace_lost_pass(client: SyncPrefectClient, service: CaseService, *, late: timedelta = PASS_LATE) -> int:
    """If the store's earliest timer is more than `late` past its time and no pass is under way
    (Running, or Pending for less than `late`), cancel the passes Pending longer than that and plan
    a pass at once (`sync_timers`). Returns how many runs it created or cancelled. One read of the
    store when nothing is late, so the catch-up can ask it every round."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Cancelled

    first = service.earliest_timer()
    now = datetime.now(UTC)
    if first is None or service.clock.wall_time_for(first) > now - late:
        return 0
    deployment = deployment_id(client, TIMER_PASS.deployment)
    stuck = []
    under_way = FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PENDING, StateType.RUNNING]))
    for run in client.read_flow_runs(flow_run_filter=FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=[deployment]), state=under_way), limit=50):
        state = run.state
        if state is None:
            continue
        if state.type is StateType.RUNNING or state.timestamp > now - late:
            return 0  # under way: it fires what is due
        stuck.append(run)
    for run in stuck:
        client.set_flow_run_state(run.id, Cancelled(message="never started (the Prefect server was away); "
                                                            "replaced"), force=True)
    return len(stuck) + sync_timers(client, service)
