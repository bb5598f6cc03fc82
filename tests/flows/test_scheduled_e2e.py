"""The scheduled deployments as `sbu serve` registers them on a real Prefect server: the daily
digest, the progress summary and the yearly report at 08:00 in Europe/London, the sweeps on their
intervals; and each run as served: quiet on a bank holiday, and otherwise its email delivered to
the system's SMTP sink, its artifact published and its files written."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule

from deployments.local import STALL_ALLOWANCE, LocalSystem, wait_until
from tests.conftest import EXAMPLE_REFERRAL
from tests.flows.conftest import SystemFactory

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

RUN_TIMEOUT = 60.0 + STALL_ALLOWANCE


def run_deployment(system: LocalSystem, name: str, parameters: dict[str, str]) -> UUID:
    """Start a run of `name` as an operator would from the dashboard; wait until it completes."""
    with system.client() as client:
        deployment = client.read_deployment_by_name(f"{name}/{name}")
        run = client.create_flow_run_from_deployment(deployment.id, parameters=parameters)

    def finished() -> bool:
        state = system.run(run.id).state
        assert state is not None
        if state.is_final():
            assert state.is_completed(), f"{name} ended {state.type.value}: {state.message}"
            return True
        return False

    wait_until(finished, timeout=RUN_TIMEOUT, what=f"the {name} run to complete")
    return run.id


def test_sbu_serve_schedules_the_digest_summary_and_report_at_eight_in_london_and_they_run(
        local_system: SystemFactory, tmp_path: Path) -> None:
    # Case time begins at 09:00 on Christmas Day 2026, a bank holiday.
    system = local_system(case_start=datetime(2026, 12, 25, 9, 0, tzinfo=UTC))
    with system.client() as client:
        deployments = {name: client.read_deployment_by_name(f"{name}/{name}")
                       for name in ("daily-digest", "progress-summary", "yearly-report", "deliver-outbox",
                                    "reconcile")}
    schedules = {name: [item.schedule for item in deployment.schedules]
                 for name, deployment in deployments.items()}
    crons = {name: [(s.cron, s.timezone) for s in found if isinstance(s, CronSchedule)]
             for name, found in schedules.items()}
    assert crons == {"daily-digest": [("0 8 * * 1-5", "Europe/London")],
                     "progress-summary": [("0 8 1-7 * *", "Europe/London")],
                     "yearly-report": [("0 8 1-7 4 *", "Europe/London")],
                     "deliver-outbox": [], "reconcile": []}
    assert [s.interval for s in schedules["deliver-outbox"] if isinstance(s, IntervalSchedule)] == [
        timedelta(seconds=300)]
    assert [s.interval for s in schedules["reconcile"] if isinstance(s, IntervalSchedule)] == [
        timedelta(seconds=600)]
    # The flow's docstring, written for the operator, is the deployment's description.
    description = deployments["daily-digest"].description or ""
    assert description.startswith("Email the SBU inbox the daily digest")
    assert "bank holiday" in description

    referral = tmp_path / "referral.json"
    referral.write_text(json.dumps(EXAMPLE_REFERRAL))
    case_ref = system.sbu("refer", str(referral)).stdout.strip()

    def subjects(start: str) -> list[str]:
        return [subject.strip() for subject in system.mail_subjects() if subject.strip().startswith(start)]

    # Today on the case clock is Christmas Day: the digest's run ends quietly and sends nothing.
    run_deployment(system, "daily-digest", {})
    # Given a working day, it sends; its email reaches the SMTP sink through the outbox.
    run_deployment(system, "daily-digest", {"day": "2026-12-29"})
    wait_until(lambda: subjects("[SBU] Daily digest"), timeout=RUN_TIMEOUT, what="the digest email")
    assert subjects("[SBU] Daily digest") == [
        "[SBU] Daily digest for Tuesday 29 December 2026: 1 overdue, 0 due today, 1 open case"]

    run_deployment(system, "progress-summary", {"day": "2027-01-04"})
    wait_until(lambda: subjects("[SBU] Progress summary"), timeout=RUN_TIMEOUT, what="the summary email")
    assert subjects("[SBU] Progress summary") == [
        "[SBU] Progress summary for January 2027: 0 open reviews, 0 with steps late"]
    with system.client() as client:
        [artifact] = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["progress-summary-default-2027-01"])))
    assert artifact.type == "markdown"
    assert str(artifact.data).startswith("# Progress summary of the open reviews: January 2027")

    run_deployment(system, "yearly-report", {"day": "2027-04-01"})
    folder = system.data_dir / "reports" / "2026-04-01_2027-03-31"
    assert {path.name for path in folder.iterdir()} == {"report.md", "report.html", "cases.csv", "charts"}
    assert (folder / "charts" / f"timeline-{case_ref}.png").is_file()
    wait_until(lambda: subjects("[SBU] Yearly report ready"), timeout=RUN_TIMEOUT, what="the report notice")
    time.sleep(2)  # anything else the runs sent would have arrived by now
    assert len(subjects("[SBU] Daily digest")) == 1  # Christmas Day's run sent nothing
