"""Showing a case on the operators' dashboard: its runs' path and stage tags, its timeline
artifact and the link to it on the case's own run (`models.dashboard` says what they are). Each
call reads what Prefect shows and writes only what differs, so the flows, `sbu` and the deadline
checks can all call it after every change, any number of times.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING
from uuid import UUID

from models.calendar import WorkingDayCalendar, london_date
from models.dashboard import (
    retagged,
    timeline_description,
    timeline_key,
    timeline_link_key,
    timeline_rows,
    timeline_table,
    timeline_url,
)
from models.registry import Registry
from models.state import CaseState

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

    from tasks.service import CaseService


def retag_runs(client: SyncPrefectClient, state: CaseState, runs: Iterable[UUID], *,
               registry: Registry) -> int:
    """Bring the path and stage tags of the case's `runs` up to date; return how many changed.
    Prefect replaces a run's tags as a whole, so the run's other tags are read and kept."""
    from prefect.exceptions import ObjectNotFound

    changed = 0
    for run_id in runs:
        try:
            run = client.read_flow_run(run_id)
        except ObjectNotFound:
            continue  # deleted from Prefect: the reconciliation sweep replaces it, tagged
        tags = retagged(run.tags, state, registry)
        if sorted(run.tags) != tags:
            client.update_flow_run(run_id, tags=tags)
            changed += 1
    return changed


def publish_timeline(client: SyncPrefectClient, state: CaseState, *, as_of: date,
                     calendar: WorkingDayCalendar, registry: Registry, flow_run_id: UUID | None = None,
                     task_run_id: UUID | None = None) -> bool:
    """Publish the case's timeline as a new version of its Markdown artifact (one table), unless the
    latest version already says the same; return whether it published. Linked to the run that
    published it, when there is one, so the run's own Artifacts tab shows it too."""
    from prefect.client.schemas.actions import ArtifactCreate
    from prefect.client.schemas.filters import ArtifactCollectionFilter, ArtifactCollectionFilterKey

    key = timeline_key(state.case_ref)
    data = timeline_table(timeline_rows(state, as_of=as_of, calendar=calendar))
    description = timeline_description(state, as_of=as_of, registry=registry)
    latest = client.read_latest_artifacts(
        artifact_filter=ArtifactCollectionFilter(key=ArtifactCollectionFilterKey(any_=[key])), limit=1)
    if latest and latest[0].data == data and latest[0].description == description:
        return False
    client.create_artifact(ArtifactCreate(key=key, type="markdown", data=data, description=description,
                                          flow_run_id=flow_run_id, task_run_id=task_run_id))
    return True


def link_timeline(client: SyncPrefectClient, state: CaseState, *, registry: Registry) -> bool:
    """Link the case's own run (its root process's) to the timeline's page, once: the run's
    Artifacts tab then leads to the latest timeline, whoever published it. Returns whether it
    linked (a run replaced by the reconciliation sweep is linked again)."""
    from prefect.client.schemas.actions import ArtifactCreate
    from prefect.client.schemas.filters import ArtifactCollectionFilter, ArtifactCollectionFilterKey

    run_id = state.runs.get(registry.root.id)
    if run_id is None:
        return False
    key = timeline_link_key(state.case_ref)
    latest = client.read_latest_artifacts(
        artifact_filter=ArtifactCollectionFilter(key=ArtifactCollectionFilterKey(any_=[key])), limit=1)
    if latest and str(latest[0].flow_run_id) == run_id:
        return False
    # A link is a Markdown artifact, as Prefect's own `create_link_artifact` makes one: the
    # dashboard shows a "link" artifact's text as it is, without the link.
    client.create_artifact(ArtifactCreate(
        key=key, type="markdown", data=f"[Timeline of case {state.case_ref}]({timeline_url(state.case_ref)})",
        description=f"The latest timeline of case {state.case_ref}: every item, when due, done or late.",
        flow_run_id=UUID(run_id)))
    return True


def show_case(client: SyncPrefectClient, service: CaseService, case_ref: str, *,
              runs: Iterable[UUID] | None = None, flow_run_id: UUID | None = None,
              task_run_id: UUID | None = None) -> None:
    """Show the case as the store has it now: its runs tagged with its path and stage, and its
    timeline as of today on the case clock. `runs` defaults to the runs the store knows."""
    state = service.case_view(case_ref)
    if runs is None:
        runs = [UUID(run_id) for run_id in state.runs.values() if run_id is not None]
    retag_runs(client, state, runs, registry=service.registry)
    publish_timeline(client, state, as_of=london_date(service.clock.now()), calendar=service.calendar,
                     registry=service.registry, flow_run_id=flow_run_id, task_run_id=task_run_id)
    link_timeline(client, state, registry=service.registry)
