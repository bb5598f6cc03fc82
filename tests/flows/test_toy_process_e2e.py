"""The proof that the next process is an addition: a toy two-step process, registered from the
tests (`tests.flows.toy_process`, a package) through `SBU_PROCESS_MODULES`, runs end to end under the
real `sbu serve` on a real Prefect server, with its dashboard forms, its `sbu record` command, its
durable timers and emails, its own anchor date (set by its check, its visits counted from it, moved
by `sbu retime`) and its own email (with its templates in its package), and the reconciliation
sweep, none of whose code knows it exists.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from deployments.local import STALL_ALLOWANCE, LocalSystem, wait_until
from models.enums import TimerState
from models.processes import build_registry
from tasks.prefect.resume import waiting_key
from tasks.prefect.runs import RECONCILE_DEPLOYMENT
from tasks.service import CaseService
from tasks.store.db import Store
from tests.conftest import DSP_OPTIONS, EXAMPLE_REFERRAL
from tests.flows.conftest import SystemFactory

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
# Tuesday 12 January 2027, 08:00, with a case hour passing every wall second; the case is
# referred and decided on Monday (its dates say so), the day before. The toy check, due one working
# day after Monday's decision (Tuesday), is overdue from Wednesday 00:01, about 16 s in, and
# escalated at 09:00 that day and each working day after; made on Monday, it books each agency's
# visit for fifteen working days on, Monday 1 February, its reminder over 400 case hours away.
CASE_START = datetime(2027, 1, 12, 8, 0, tzinfo=UTC)
DAY = "2027-01-11"
DSPS = DSP_OPTIONS


def toy_system(local_system: SystemFactory) -> LocalSystem:
    return local_system(time_scale=3600, case_start=CASE_START, serving=False, extra_env={
        "SBU_PROCESS_MODULES": "tests.flows.toy_process", "PYTHONPATH": str(REPO_ROOT)})


def items_of(system: LocalSystem, case_ref: str) -> dict[str, dict[str, Any]]:
    return {f"{row['step']}:{row['subject']}" if row["subject"] else row["step"]: row
            for row in system.sbu_json("status", case_ref)["steps"]}


def key_of(system: LocalSystem, run_id: UUID) -> str | None:
    return waiting_key(system.run(run_id))


def test_a_process_registered_from_the_tests_runs_end_to_end(
        local_system: SystemFactory, tmp_path: Path) -> None:
    system = toy_system(local_system)
    referral = tmp_path / "referral.json"
    referral.write_text(json.dumps(dict(EXAMPLE_REFERRAL, incident_date="2027-01-10",
                                        la_aware_date="2027-01-10", referred_at="2027-01-11T08:00:00+00:00",
                                        agencies_involved=["police", "health"])))
    # Referred and decided while nothing serves: the store alone starts the toy process, and
    # `sbu serve`'s reconciliation sweep on start creates its run and schedules its timers.
    case_ref = str(system.sbu_json("refer", str(referral))["case_ref"])
    decided = system.sbu_json("decide", case_ref, "--sin", "--rapid-review", "--on", DAY,
                              "--rationale", "Abuse suspected; criteria met.", *DSPS)
    assert "toy" in decided["started"]
    items = items_of(system, case_ref)
    # Its visits wait for the check that books them.
    assert {key: row["due"] for key, row in items.items() if key.startswith("toy")} == {
        "toy-check": "2027-01-12"}
    assert "toy-visit-booked" not in system.sbu_json("status", case_ref)["anchors"]
    system.start()

    # Its run, named by its own rule, waits on its first form, derived from the domain form.
    run = system.wait_for_wait(f"{case_ref} toy", "toy-check", timeout=90 + STALL_ALLOWANCE)
    assert waiting_key(run) == "toy-check"
    with system.client() as client:
        schema = json.loads(client.read_flow_run_input(run.id, "suspended-toy-check-schema"))
        description = json.loads(client.read_flow_run_input(run.id, "suspended-toy-check-description"))
    assert {"completed_on", "reference", "recorded_by"} == set(schema["properties"])
    assert schema["properties"]["completed_on"]["title"] == "Done on"
    assert case_ref in description
    assert "Tuesday 12 January 2027" in description
    assert "the tests' toy rule" in description

    # Left undone, the check is chased by its own timers, by email: its overdue alert, or, if
    # serve was slow enough to start that the first escalation was due too, that escalation (the
    # pass sends only the latest, and records the overdue alert as superseded).
    def toy_alerts() -> list[str]:
        return [s for s in system.mail_subjects() if case_ref in s and "Toy check made" in s]

    wait_until(lambda: any(kind in s.lower() for s in toy_alerts() for kind in ("overdue", "escalation")),
               timeout=180, what="the toy check's overdue alert")
    settings = system.settings()
    store = Store(settings.sqlalchemy_url)
    service = CaseService(store=store, settings=settings, clock=settings.clock(),
                          registry=build_registry(("tests.flows.toy_process",)))

    # The check, answered on the dashboard: recorded with its author, and the run moves on.
    with system.client() as client:
        answer = client.resume_flow_run(run.id, run_input={"completed_on": DAY, "recorded_by": "Toy Tester"})
    assert answer.status.value == "ACCEPT", answer.details
    wait_until(lambda: key_of(system, run.id) == "toy-visits-0", timeout=60 + STALL_ALLOWANCE,
               what="the toy visits' wait")
    check = items_of(system, case_ref)["toy-check"]
    assert (check["state"], check["completed_by"]) == ("done", "Toy Tester")
    # The check set the toy's own anchor, and each agency's visit is counted from it.
    status = system.sbu_json("status", case_ref)
    assert status["anchors"]["toy-visit-booked"] == DAY
    visits = {row["subject"]: row for row in status["steps"] if row["step"] == "toy-visit"}
    assert {subject: (row["due"], row["rule"]) for subject, row in visits.items()} == {
        agency: ("2027-02-01", "15 working days after toy-visit-booked") for agency in ("police", "health")}
    # And its own email reached the SBU, by reference only, from the templates in its package.
    booked = f"[{case_ref}] Toy visits booked on Monday 11 January 2027: 2 due by Monday 1 February 2027"
    wait_until(lambda: booked in system.mail_subjects(), timeout=60 + STALL_ALLOWANCE,
               what="the toy's own email")

    # One agency's visit, recorded with `sbu record`: the run wakes to the next count.
    recorded = system.sbu_json("record", case_ref, "toy-visit", "--agency", "police", "--on", DAY)
    assert recorded["completed"] == ["toy-visit:police"]
    wait_until(lambda: key_of(system, run.id) == "toy-visits-1", timeout=60 + STALL_ALLOWANCE,
               what="the next toy wait")
    items = items_of(system, case_ref)
    assert (items["toy-visit:police"]["state"], items["toy-visit:health"]["state"]) == ("done", "open")
    refused = system.sbu("record", case_ref, "toy-visit", "--agency", "education", check=False)
    assert refused.returncode == 2
    assert "not waiting for toy-visit" in refused.stderr

    # Its items' timers are rows in the store, fired by the one timer pass planned in Prefect for
    # the earliest of them; no timer is a run of its own.
    with system.client() as client:
        runs = client.read_flow_runs(limit=200)
    passes = [r for r in runs if r.name.startswith("timer-pass") and r.state_type is not None
              and r.state_type.value == "SCHEDULED"]
    assert len(passes) == 1
    assert not [r.name for r in runs if r.name.startswith(f"{case_ref} toy-visit:")]

    # Prefect loses the run: the sweep notices and replaces it, waiting where the store says.
    with system.client() as client:
        from prefect.states import Crashed

        client.set_flow_run_state(run.id, Crashed(message="lost in a test"), force=True)
        client.create_flow_run_from_deployment(
            client.read_deployment_by_name(RECONCILE_DEPLOYMENT).id, name="reconcile (test)")

    def replacement() -> UUID | None:
        for candidate in system.runs_named(f"{case_ref} toy"):
            if candidate.id != run.id and waiting_key(candidate) == "toy-visits-1":
                return candidate.id
        return None

    wait_until(replacement, timeout=90 + STALL_ALLOWANCE, what="reconcile to replace the toy run")

    # Done, the check is chased no more: its timers were cancelled with it, and nothing goes out
    # by the time the one it had waiting would have fired (at most one escalation crossed paths
    # with the record).
    seen = toy_alerts()
    try:
        assert not [timer for timer in service.timers(case_ref=case_ref) if timer.step == "toy-check"]
        # The latest: one superseded by a later alert of the same pass is cancelled too.
        cancelled = max(timer.fire_at for timer in service.timers(
            case_ref=case_ref, states=(TimerState.CANCELLED,)) if timer.step == "toy-check")
        # Three case hours on, time for a timer pass that fired it to have sent its email.
        wait_until(lambda: service.clock.now() > cancelled + timedelta(hours=3), timeout=60, interval=0.5,
                   what="the cancelled timer's time to pass")
    finally:
        store.dispose()
    assert len(toy_alerts()) <= len(seen) + 1, toy_alerts()
    assert not [s for s in system.mail_subjects() if "toy-visit:police" in s]

    # The toy's anchor moved by a person, with a reason: the visit still open follows it; the one
    # done keeps its date.
    moved = system.sbu_json("retime", case_ref, "toy-visit-booked", "--to", "2027-01-12",
                            "--reason", "The visits were booked a day later")
    assert moved["retimed"] == ["toy-visit:health"]
    status = system.sbu_json("status", case_ref)
    assert status["anchors"]["toy-visit-booked"] == "2027-01-12"
    visits = {row["subject"]: row for row in status["steps"] if row["step"] == "toy-visit"}
    assert (visits["health"]["due"], visits["police"]["due"]) == ("2027-02-02", "2027-02-01")
