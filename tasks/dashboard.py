"""Showing a case on the operators' dashboard: its runs' path and stage tags, its timeline
artifact and the link to it on the case's own run (`models.dashboard` says what they are). Each
call reads what Prefect shows and writes only what differs, so the flows, `sbu` and the deadline
checks can all call it after every change, any number of times.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING
from uuid import UUID

from models.calendar import WorkingDayCalendar, end_of_london_day, london_date
from models.dashboard import (
    DEADLINES_KEY,
    UpcomingAlert,
    deadline_rows,
    deadlines_description,
    deadlines_until,
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


def publish_markdown(client: SyncPrefectClient, *, key: str, markdown: str, description: str,
                     flow_run_id: UUID | None = None) -> bool:
    """A new version of the Markdown artifact `key`, unless its latest version already says the
    same; whether it published. A run that replays from the top shows the same page once."""
    return _publish_table(client, key=key, data=markdown, description=description, flow_run_id=flow_run_id,
                          task_run_id=None, kind="markdown")


def _publish_table(client: SyncPrefectClient, *, key: str, data: str, description: str,
                   flow_run_id: UUID | None, task_run_id: UUID | None, kind: str = "table") -> bool:
    """A new version of the artifact `key` (a table, or the `kind` given), unless its latest version
    already says the same; whether it published."""
    from prefect.client.schemas.actions import ArtifactCreate
    from prefect.client.schemas.filters import ArtifactCollectionFilter, ArtifactCollectionFilterKey

    latest = client.read_latest_artifacts(
        artifact_filter=ArtifactCollectionFilter(key=ArtifactCollectionFilterKey(any_=[key])), limit=1)
    if latest and latest[0].data == data and latest[0].description == description:
        return False
    client.create_artifact(ArtifactCreate(key=key, type=kind, data=data, description=description,
                                          flow_run_id=flow_run_id, task_run_id=task_run_id))
    return True


def publish_deadlines(client: SyncPrefectClient, service: CaseService, *, flow_run_id: UUID | None = None,
                      task_run_id: UUID | None = None) -> bool:
    """Publish the `deadlines` table (every alert to go out in the next working days, by case and
    item) if it changed; whether it published."""
    today = london_date(service.clock.now())
    until = deadlines_until(today=today, calendar=service.calendar)
    alerts = [UpcomingAlert(case_ref=t.case_ref, item=f"{t.step}:{t.subject}" if t.subject else t.step,
                            kind=t.kind, sequence=t.sequence, fire_at=t.fire_at)
              for t in service.timers(due_by=end_of_london_day(until))]
    return _publish_table(client, key=DEADLINES_KEY, data=json.dumps(deadline_rows(alerts)),
                          description=deadlines_description(today=today, until=until),
                          flow_run_id=flow_run_id, task_run_id=task_run_id)


def publish_timeline(client: SyncPrefectClient, state: CaseState, *, as_of: date,
                     calendar: WorkingDayCalendar, registry: Registry, flow_run_id: UUID | None = None,
                     task_run_id: UUID | None = None) -> bool:
    """Publish the case's timeline as a new version of its Markdown artifact (one table), unless the
    latest version already says the same; return whether it published. Linked to the run that
    published it, when there is one, so the run's own Artifacts tab shows it too."""
    data = timeline_table(timeline_rows(state, as_of=as_of, calendar=calendar))
    return _publish_table(client, key=timeline_key(state.case_ref), data=data,
                          description=timeline_description(state, as_of=as_of, registry=registry),
                          flow_run_id=flow_run_id, task_run_id=task_run_id, kind="markdown")


def show_timelines(client: SyncPrefectClient, service: CaseService, case_refs: Iterable[str], *,
                   flow_run_id: UUID | None = None) -> int:
    """Publish the timelines of `case_refs` as of today (after a timer pass: their items' lateness
    counts from today); how many changed. Their runs' tags are left alone: a timer changes no
    case's path or stage."""
    as_of = london_date(service.clock.now())
    return sum(publish_timeline(client, service.case_view(case_ref), as_of=as_of, calendar=service.calendar,
                                registry=service.registry, flow_run_id=flow_run_id)
               for case_ref in case_refs)


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
