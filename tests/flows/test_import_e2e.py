"""A partnership's open cases imported on day one, end to end: `sbu import` against `sbu serve` on a
real Prefect server, with a real SMTP server on loopback. 25 cases at every stage and 5 bad rows;
the cases land with their history, their runs wait where the store says, their timers lie in the
future, the SBU gets one summary and nothing else; a second import changes nothing; and an imported
case reads as the same case recorded step by step with `sbu`."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from deployments.local import STALL_ALLOWANCE, LocalSystem, wait_until
from models.processes import build_registry
from models.state import CaseState
from tasks.prefect.resume import waiting_key
from tasks.service import CaseService
from tasks.store.db import Store
from tests.conftest import DSP_OPTIONS
from tests.flows.conftest import SystemFactory
from tests.import_cases import open_case, twenty_five_cases

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

START = datetime(2027, 6, 15, 11, 0, tzinfo=UTC)  # a Tuesday
TODAY = date(2027, 6, 15)
MARKER = "Marker-Rationale-Zq"
# How long the imported cases' 65 runs may take to start and reach their waits: each run costs a
# few CPU-seconds to start (docs/architecture.md), on a machine of two cores.
SETTLE_SECONDS = 900


def bad_rows() -> list[tuple[dict[str, Any], str]]:
    """Five rows the import must refuse, each with the start of its report line (column) and why."""
    unsigned = open_case(101, today=TODAY, age=10)
    del unsigned["history"][0]["dsp_health"]
    unsigned["history"][0]["rationale"] = MARKER
    future = open_case(102, today=TODAY, age=10)
    future["history"][1]["completed_on"] = "2027-06-16"
    early = open_case(103, today=TODAY, age=10)
    early["referral"]["la_aware_date"] = "2027-06-09"  # after the police referred, after the SIN
    near_miss = open_case(104, today=TODAY, age=10, near_miss=True)
    near_miss["history"].append({"step": "sin-submission", "national_ref": "CSIN-X",
                                 "completed_on": "2027-06-10"})
    duplicate = open_case(1, today=TODAY, age=3)
    duplicate["history"][0]["rationale"] = MARKER
    last = len(near_miss["history"]) - 1
    return [(unsigned, "history[0].dsp_health: Field required"),
            (future, "history[1].completed_on: is in the future"),
            (early, "history[1].completed_on: the step's clock started"),
            (near_miss, f"history[{last}].completed_on: the case is not waiting for sin-submission"),
            (duplicate, "external_ref: the same referral as row 1")]


def expected_waits(service: CaseService, views: list[CaseState]) -> dict[tuple[str, str], str | None]:
    """Every run each case should have, by case and process: the key it should wait on (its
    process's current wait, as the store stands), or None for a process with nothing left open."""
    registry = service.registry
    expected: dict[tuple[str, str], str | None] = {}
    for view in views:
        for process_id in view.runs:
            wait = registry.process(process_id).current_wait(view)
            expected[(view.case_ref, process_id)] = wait.base_key(view) if wait is not None else None
    return expected


def runs_not_waiting_as_expected(system: LocalSystem, service: CaseService) -> list[str]:
    """Each run that is not (yet) where the store says its case is: `case process: state key`.
    Every run is read in one request: this is polled while the runs start, and the Prefect server
    that starts them need not answer some 65 requests a poll as well."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    views = service.list_cases()
    expected = expected_waits(service, views)
    ids = [UUID(run_id) for view in views for run_id in view.runs.values() if run_id is not None]
    with system.client() as client:
        runs = {run.id: run for run in client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), limit=len(ids))} if ids else {}
    wrong: list[str] = []
    for view in views:
        for process_id, run_id in view.runs.items():
            run = runs.get(UUID(run_id)) if run_id is not None else None
            if run is None:
                wrong.append(f"{view.case_ref} {process_id}: no run {run_id or ''}".rstrip())
                continue
            want = expected[(view.case_ref, process_id)]
            key = waiting_key(run)
            state = run.state.type.value if run.state is not None else None
            if (want is None and state != "COMPLETED") or \
                    (want is not None and (key is None or not key.startswith(want))):
                wrong.append(f"{view.case_ref} {process_id}: {state} {key} (expected {want})")
    return wrong


def outbox(system: LocalSystem) -> list[tuple[str, int]]:
    """How many emails the store has queued, by status."""
    connection = sqlite3.connect(f"file:{system.data_dir / 'sbu.db'}?mode=ro", uri=True, timeout=30)
    try:
        return list(connection.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall())
    finally:
        connection.close()


@pytest.mark.timeout(1500)
def test_open_cases_imported_with_their_history(local_system: SystemFactory, tmp_path: Path) -> None:
    # The catch-up that creates the new cases' runs looks every second rather than every 15 (a
    # round is store reads only, while there is nothing to tell).
    system = local_system(case_start=START, extra_env={"SBU_CATCH_UP_SECONDS": "1"})
    good = twenty_five_cases(TODAY)
    bad = bad_rows()
    rows: list[dict[str, Any]] = list(good)
    for position, (case, _) in zip((2, 7, 13, 19, 27), bad, strict=True):
        rows.insert(position, case)
    tracker = tmp_path / "tracker.json"
    tracker.write_text(json.dumps(rows))

    started = time.monotonic()
    result = system.sbu("import", str(tracker), check=False)
    took = time.monotonic() - started
    assert result.returncode == 1, result.stderr  # some rows refused
    lines = result.stdout.splitlines()
    assert sum(": imported as SR-" in line for line in lines) == 25, result.stdout
    refused = [line for line in lines if line.endswith("(refused)")]
    assert [line.split(":")[0] for line in refused] == [f"row {p + 1}, column {c.split(':')[0]}" for p, (_, c)
                                                        in zip((2, 7, 13, 19, 27), bad, strict=True)]
    for line, (_, reason) in zip(refused, bad, strict=True):
        assert reason.split(": ", 1)[1] in line, line
    assert MARKER not in result.stdout + result.stderr
    assert lines[-1] == "imported 25, refused 5"

    settings = system.settings()
    store = Store(settings.sqlalchemy_url).migrate()
    try:
        service = CaseService(store=store, settings=settings, clock=settings.clock(),
                              registry=build_registry())
        views = service.list_cases()
        assert len(views) == 25
        stages = {service.registry.stage_of(view).value for view in views}
        assert stages >= {"awaiting-decision", "notification", "rapid-review", "cspr", "action-plan"}
        # Every run waits where the store says its case is (or is done), once serve has caught up.
        wrong: list[str] = []

        def all_waiting() -> bool:
            wrong[:] = runs_not_waiting_as_expected(system, service)
            return not wrong

        settling = time.monotonic()
        try:
            wait_until(all_waiting, timeout=SETTLE_SECONDS + STALL_ALLOWANCE, interval=2.0,
                       what="every imported case's runs to wait on their forms")
        except TimeoutError:
            pytest.fail(f"{len(wrong)} runs not waiting as the store says: {wrong}")
        settled = time.monotonic() - settling
        # Only the future is timed, in the store and in Prefect.
        now = service.clock.now()
        timers = service.timers()
        assert timers
        assert all(timer.fire_at > now for timer in timers)
        with system.client() as client:
            scheduled = [run for run in client.read_flow_runs(limit=200)
                         if run.state is not None and run.state.type.value == "SCHEDULED"]
        assert all(run.expected_start_time is None or run.expected_start_time > datetime.now(UTC)
                   for run in scheduled)
        # One email, the summary, and no alert: the store has queued one email, and it was sent.
        wait_until(lambda: system.mail_subjects(), timeout=30 + STALL_ALLOWANCE, what="the summary email")
        wait_until(lambda: all(status != "pending" for status, _ in outbox(system)),
                   timeout=30 + STALL_ALLOWANCE, what="the outbox to deliver")
        assert outbox(system) == [("sent", 1)]
        [subject] = system.mail_subjects()
        assert subject.startswith("[SBU] Open cases imported: 25 cases,")

        counts = {view.case_ref: (view.status, len(view.steps)) for view in service.list_cases()}
        again = system.sbu("import", str(tracker), check=False)
        assert again.returncode == 1
        assert sum(line.endswith("unchanged") or ": unchanged as " in line
                   for line in again.stdout.splitlines()) == 25, again.stdout
        assert {view.case_ref: (view.status, len(view.steps)) for view in service.list_cases()} == counts
        assert len(system.mail_subjects()) == 1
        assert outbox(system) == [("sent", 1)]

        # The same case as the one referred 13 days ago, recorded step by step with `sbu`.
        imported = good[5]
        assert imported["referral"]["external_ref"] == "TRK-0006"
        [imported_ref] = [line.split(" as ")[1].split(";")[0] for line in lines
                          if line.startswith(f"row {rows.index(imported) + 1}: imported as ")]
        by_hand = by_hand_case(system, tmp_path, imported)
        assert status_of(system, imported_ref) == status_of(system, by_hand)
    finally:
        store.dispose()
    print(f"\nsbu import of 30 rows against a running serve: {took:.1f} s; every run waiting "
          f"{settled:.0f} s later")


def status_of(system: LocalSystem, case_ref: str) -> dict[str, Any]:
    shown: dict[str, Any] = system.sbu_json("status", case_ref)
    shown.pop("case_ref")
    return shown


def by_hand_case(system: LocalSystem, tmp_path: Path, case: dict[str, Any]) -> str:
    referral = tmp_path / "by-hand.json"
    referral.write_text(json.dumps(dict(case["referral"], external_ref="BY-HAND-1")))
    case_ref = str(system.sbu_json("refer", str(referral))["case_ref"])
    for entry in case["history"]:
        by = entry.get("by", case["recorded_by"])
        match entry["step"]:
            case "dsp-decision":
                system.sbu("decide", case_ref, "--sin", "--rapid-review", "--rationale", entry["rationale"],
                           *DSP_OPTIONS, "--deputy", "police", "--on", entry["decided_on"], "--by", by)
            case "sin-submission":
                system.sbu("record", case_ref, "sin-submission", "--national-ref", entry["national_ref"],
                           "--on", entry["completed_on"], "--by", by)
            case "rr-agency-responses":
                system.sbu("record", case_ref, "rr-agency-responses", "--agency", entry["agency"],
                           "--on", entry["completed_on"], "--by", by)
            case "rr-meeting":
                system.sbu("record", case_ref, "rr-meeting", "--reference", entry["reference"],
                           "--on", entry["completed_on"], "--by", by)
            case step:
                system.sbu("record", case_ref, step, "--on", entry["completed_on"], "--by", by)
    return case_ref
