"""Scheduling the deadline-check runs of the store's timers, and cancelling those of timers the
store has cancelled."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from models.processes import DEADLINE_CHECK
from tasks.prefect.connection import deployment_id
from tasks.service import CaseService

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient


def sync_timers(client: SyncPrefectClient, service: CaseService, *, case_ref: str | None = None) -> int:
    """Schedule a deadline-check run for every timer the store has that Prefect does not, and
    cancel the runs of timers the store has cancelled. Returns how many runs it changed."""
    from prefect.client.schemas.objects import StateType
    from prefect.states import Cancelled, Scheduled

    changed = 0
    deployment = None
    for timer in service.timers(case_ref=case_ref):
        if timer.flow_run_id is not None:
            continue
        deployment = deployment or deployment_id(client, DEADLINE_CHECK.deployment)
        wall_time = service.clock.wall_time_for(timer.fire_at)
        item = f"{timer.step}:{timer.subject}" if timer.subject else timer.step
        run = client.create_flow_run_from_deployment(
            deployment, parameters={"timer_key": timer.key},
            name=f"{timer.case_ref} {item} {timer.kind.value}"
                 + (f" {timer.sequence}" if timer.sequence else ""),
            state=Scheduled(scheduled_time=wall_time), idempotency_key=timer.key,
        )
        service.mark_timer_scheduled(timer.key, str(run.id))
        changed += 1
    for timer in service.timer_runs_to_cancel(case_ref=case_ref):
        assert timer.flow_run_id is not None
        run = client.read_flow_run(UUID(timer.flow_run_id))
        if run.state is not None and run.state.type == StateType.SCHEDULED:
            client.set_flow_run_state(run.id, Cancelled(message="the step was done"), force=True)
            changed += 1
        service.forget_timer_run(timer.key)
    return changed
