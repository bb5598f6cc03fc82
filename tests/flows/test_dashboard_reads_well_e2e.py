"""What an operator reads on the dashboard, end to end on a real Prefect server
with `sbu serve`'s runner: each case run named by its case reference and tagged with its path and
stage, re-tagged as they change; the case's timeline artifact, a new version after each change; and
the upcoming deadlines: the `deadlines` table, and the next timer pass as a scheduled run. A
decision is answered on the dashboard's form (as the Prefect UI answers it), the SIN's submission
with `sbu record`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.schemas.objects import FlowRun
from prefect.states import Scheduled

from deployments.local import STALL_ALLOWANCE, LocalSystem, wait_until
from models.dashboard import DEADLINES_KEY, timeline_key
from models.processes import build_registry
from tests.conftest import EXAMPLE_REFERRAL, SIGNATURES
from tests.flows.conftest import SystemFactory

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

DAY = "2026-12-23"  # the referral day, and "today" on the case clock
TIMEOUT = 60.0 + STALL_ALLOWANCE
REGISTRY = build_registry()


def tags_of(system: LocalSystem, run_id: UUID) -> set[str]:
    return set(system.run(run_id).tags)


def table(system: LocalSystem, key: str) -> list[dict[str, str]]:
    """The rows of the latest version of the table artifact `key` (none if it has none)."""
    from prefect.client.schemas.filters import ArtifactCollectionFilter, ArtifactCollectionFilterKey

    with system.client() as client:
        latest = client.read_latest_artifacts(
            artifact_filter=ArtifactCollectionFilter(key=ArtifactCollectionFilterKey(any_=[key])))
    return json.loads(str(latest[0].data)) if latest else []


def timeline(system: LocalSystem, case_ref: str) -> tuple[list[dict[str, str]], str, int]:
    """The latest version of the case's timeline artifact, one Markdown table, as rows by column
    heading (its rows, its description), and how many versions it has."""
    from prefect.client.schemas.filters import (
        ArtifactCollectionFilter,
        ArtifactCollectionFilterKey,
        ArtifactFilter,
        ArtifactFilterKey,
    )

    key = timeline_key(case_ref)
    with system.client() as client:
        latest = client.read_latest_artifacts(
            artifact_filter=ArtifactCollectionFilter(key=ArtifactCollectionFilterKey(any_=[key])))
        versions = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    if not latest:
        return [], "", 0
    assert latest[0].type == "markdown"
    lines = str(latest[0].data).splitlines()
    assert all(line.startswith("|") for line in lines), "one table, nothing else"
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = [dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")), strict=True))
            for line in lines[2:]]
    return rows, str(latest[0].description), len(versions)


def row_of(rows: list[dict[str, str]], item: str) -> dict[str, str] | None:
    return next((row for row in rows if row["Item"] == item), None)


def title(step: str) -> str:
    spec = REGISTRY.item(step)
    assert spec is not None
    return spec.title


def test_the_dashboard_shows_each_case_by_reference_path_stage_and_timeline_as_it_changes(
        local_system: SystemFactory, tmp_path: Path) -> None:
    system = local_system(case_start=datetime(2026, 12, 23, 12, 0, tzinfo=UTC))
    referral = tmp_path / "referral.json"
    referral.write_text(json.dumps(EXAMPLE_REFERRAL))
    case_ref = str(system.sbu_json("refer", str(referral))["case_ref"])

    # Referred: the case's run is named by its reference, tagged, and its timeline published.
    run = system.wait_for_wait(case_ref, "dsp-decision")
    assert run.name == case_ref
    assert {"path:awaiting-decision", "stage:awaiting-decision"} <= tags_of(system, run.id)
    rows, description, versions = timeline(system, case_ref)
    assert versions >= 1
    assert row_of(rows, title("dsp-decision")) == {
        "Item": "DSPs decide on a SIN and a Rapid Review", "Due": "24 Dec 2026", "Where it stands": "Open"}
    assert description.startswith(f"**Timeline of case {case_ref}** as of Wednesday 23 December 2026")

    # Its next deadline is the next timer pass, a scheduled run named for when it goes (case time,
    # London): the overdue alert's time.
    def planned() -> FlowRun | None:
        with system.client() as client:
            runs = [r for r in client.read_flow_runs(limit=200)
                    if r.name.startswith("timer-pass") and r.state_type is not None
                    and r.state_type.value == "SCHEDULED"]
        return runs[0] if len(runs) == 1 else None

    # Serve's sweep on start plans the pass again (two processes may each have planned one as the
    # case was referred, and any plan cancels a pass not at the time wanted): the pass is taken
    # once that sweep is done, or the one brought forward below could be cancelled under it.
    def swept() -> bool:
        with system.client() as client:
            return any(r.name.startswith("reconcile") and r.state_type is not None
                       and r.state_type.value == "COMPLETED" for r in client.read_flow_runs(limit=200))

    wait_until(swept, timeout=TIMEOUT, what="serve's sweep on start")
    timer_pass = wait_until(planned, timeout=TIMEOUT, what="the timer pass to be planned")
    assert timer_pass.name == "timer-pass Fri 25 Dec 00:01"
    # Brought forward to now it runs, and keeps its name (Prefect would rename it to the flow's
    # own run name when it starts); it finds nothing due yet, plans the pass again, and refreshes
    # the deadlines table: every alert still to go, by when it goes, case and item.
    with system.client() as client:
        client.set_flow_run_state(timer_pass.id, Scheduled(scheduled_time=datetime.now(UTC)), force=True)
    def completed() -> FlowRun | None:
        run = system.run(timer_pass.id)
        return run if run.state_type is not None and run.state_type.value == "COMPLETED" else None

    assert wait_until(completed, timeout=TIMEOUT, what="the pass to run").name == \
        "timer-pass Fri 25 Dec 00:01"
    assert wait_until(planned, timeout=TIMEOUT, what="the pass planned again").name == \
        "timer-pass Fri 25 Dec 00:01"
    rows = [row for row in table(system, DEADLINES_KEY) if row["case"] == case_ref]
    assert [(row["when (London)"], row["item"], row["alert"]) for row in rows] == [
        ("Fri 25 Dec 2026 00:01", "dsp-decision", "overdue"),
        ("Tue 29 Dec 2026 09:00", "dsp-decision", "escalation 1")]

    # The DSPs decide on the dashboard's form: path and stage move, and the timeline has a new version.
    with system.client() as client:
        answered = client.resume_flow_run(run.id, run_input={
            "sin": "yes", "rapid_review": "yes", "rationale": "Abuse suspected; criteria met.",
            **SIGNATURES, "decided_on": DAY, "recorded_by": "Dana Duty"})
    assert answered.status.value == "ACCEPT", answered.details
    system.wait_for_wait(case_ref, "notification-")

    def decided() -> tuple[list[dict[str, str]], int] | None:
        rows, _, versions = timeline(system, case_ref)
        done = row_of(rows, title("dsp-decision"))
        return (rows, versions) if done is not None and done["Where it stands"] == "Done on time" else None

    rows, after_decision = wait_until(decided, timeout=TIMEOUT, what="the timeline to show the decision")
    assert after_decision > versions
    assert row_of(rows, title("dsp-decision")) == {
        "Item": "DSPs decide on a SIN and a Rapid Review", "Due": "24 Dec 2026",
        "Where it stands": "Done on time"}
    # LA aware Tue 22 Dec 2026: 23, 24, 29, 30, 31 Dec (25 and 28 Dec are bank holidays).
    assert (row_of(rows, title("sin-submission")) or {}).get("Due") == "31 Dec 2026"
    tags = tags_of(system, run.id)
    assert {"path:sin-and-rapid-review", "stage:notification"} <= tags
    assert not {"path:awaiting-decision", "stage:awaiting-decision"} & tags

    # The SIN submitted, recorded with `sbu`: the Rapid Review starts as a run of its own, tagged,
    # the case's own run is re-tagged, and the timeline shows the Rapid Review's items.
    system.sbu("record", case_ref, "sin-submission", "--national-ref", "CSIN-2026-0042", "--on", DAY)
    review = system.wait_for_wait(f"{case_ref} rapid review", "rr-meeting-")
    assert {"path:sin-and-rapid-review", "stage:rapid-review"} <= tags_of(system, review.id)
    wait_until(lambda: "stage:rapid-review" in tags_of(system, run.id), timeout=TIMEOUT,
               what="the case's run to be re-tagged")

    def submitted() -> tuple[list[dict[str, str]], int] | None:
        rows, _, versions = timeline(system, case_ref)
        sin = row_of(rows, title("sin-submission"))
        return (rows, versions) if sin is not None and sin["Where it stands"] == "Done on time" else None

    rows, after_record = wait_until(submitted, timeout=TIMEOUT, what="the timeline to show the SIN")
    assert after_record > after_decision
    # Notified Wed 23 Dec: 24, 29, 30, 31 Dec, 4 Jan; the meeting on the 8th working day, 7 Jan.
    assert (row_of(rows, f"{title('rr-agency-responses')} (Police)") or {}).get("Due") == "04 Jan 2027"
    assert (row_of(rows, title("rr-meeting")) or {}).get("Due") == "07 Jan 2027"
    dues = [datetime.strptime(row["Due"], "%d %b %Y").date() for row in rows]
    assert dues == sorted(dues)

    # The case's own run leads to the timeline: one link on its Artifacts tab, to the latest version.
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with system.client() as client:
        linked = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
    links = [artifact for artifact in linked if artifact.key == f"timeline-link-{case_ref.lower()}"]
    assert [str(link.data) for link in links] == [
        f"[Timeline of case {case_ref}](/artifacts/key/{timeline_key(case_ref)})"]

    # Nothing personal in any of it: not the child's record id, not a signatory, not the rationale.
    with system.client() as client:
        runs = [r for r in client.read_flow_runs(limit=200) if r.name.startswith(case_ref)]
    published: list[Any] = [timeline(system, case_ref), [(r.name, sorted(r.tags)) for r in runs]]
    text = json.dumps(published)
    for personal in ("LA-000123", "Dana", "Sam Patel", "Alex Morgan", "Abuse suspected", "POL-2026-1234"):
        assert personal not in text
