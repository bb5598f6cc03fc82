"""Repairing whatever the store and Prefect disagree on: the catch-up of what the store committed
while Prefect could not be told, and the full reconciliation sweep."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from models.enums import CaseStatus
from tasks.prefect.resume import resume_if_waiting
from tasks.prefect.runs import abandon_orphans, ensure_runs, trigger_delivery
from tasks.prefect.timers import sync_timers
from tasks.service import CaseService

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient


def tell_untold(client: SyncPrefectClient, service: CaseService) -> int:
    """Tell Prefect what the store committed while Prefect could not be told (its server busy or
    down when `sbu` made the change): the run of a process a case started, a timer to schedule or
    cancel. Only store reads when there is nothing to tell, so `sbu serve` runs it every few
    seconds; the full reconciliation sweep, which also reads every run from Prefect, runs rarely.
    Returns how many things it told."""
    told = 0
    for case_ref in service.cases_with_untold_runs():
        ensure_runs(client, service, case_ref)
        told += 1
    if told:
        trigger_delivery(client)  # what the changes queued: their runs only read the store and wait
    if service.untold_timers():
        told += sync_timers(client, service)
    return told


def reconcile(client: SyncPrefectClient, service: CaseService, *,
              serve_started: datetime | None = None) -> dict[str, int]:
    """Repair any disagreement between the store and Prefect: runs missing for open cases (or
    given up by Prefect), timers not scheduled or not cancelled, runs left waiting on a step the
    store shows done. On serve's start, runs a stopped serve left mid-way are replaced too."""
    orphans = abandon_orphans(client, service, serve_started=serve_started) if serve_started else 0
    ensured = resumed = 0
    for view in service.list_cases():
        if view.status is CaseStatus.CLOSED:
            continue
        runs = ensure_runs(client, service, view.case_ref)
        ensured += sum(1 for process_id, run_id in runs.items() if view.runs.get(process_id) != str(run_id))
        for process_id, run_id in runs.items():
            if resume_if_waiting(client, service, run_id, process=service.registry.process(process_id),
                                 case_ref=view.case_ref):
                resumed += 1
    timers = sync_timers(client, service)
    return {"orphans": orphans, "runs_created": ensured, "runs_resumed": resumed,
            "timer_runs_changed": timers}
