"""The case flow end to end: a real Prefect server, `sbu serve` with its served runner, a real SMTP
server on loopback, and the `sbu` command, as a user would run them."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deployments.local import STALL_ALLOWANCE, LocalSystem, wait_until
from models.enums import Interface, TimerState
from models.forms import parse_referral
from tasks.service import Actor, CaseService
from tasks.store.db import Store
from tests.conftest import DSP_OPTIONS, EXAMPLE_REFERRAL
from tests.flows.conftest import SystemFactory

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

DSPS = DSP_OPTIONS


def referral_file(path: Path, **changes: Any) -> str:
    path.write_text(json.dumps(dict(EXAMPLE_REFERRAL, **changes)))
    return str(path)


def refer(system: LocalSystem, path: Path, **changes: Any) -> str:
    return str(system.sbu_json("refer", referral_file(path, **changes))["case_ref"])


def steps_of(system: LocalSystem, case_ref: str) -> dict[str, dict[str, Any]]:
    """The case's items by label: the step, and its subject after a colon (`rr-agency-responses:police`)."""
    return {f"{row['step']}:{row['subject']}" if row["subject"] else row["step"]: row
            for row in system.ask("status", case_ref)["steps"]}


def test_refer_decide_submit_and_the_rapid_review_starts(shared_system: LocalSystem, tmp_path: Path) -> None:
    system = shared_system  # its case clock starts at noon on Wednesday 23 December 2026
    case_ref = refer(system, tmp_path / "referral.json", external_ref="POL-FLOW-START")

    run = system.wait_for_wait(case_ref, "dsp-decision")
    with system.client() as client:
        schema = json.loads(client.read_flow_run_input(run.id, "suspended-dsp-decision-schema"))
        description = json.loads(client.read_flow_run_input(run.id, "suspended-dsp-decision-description"))
    assert {"sin", "rapid_review", "rationale", "dsp_la", "dsp_health", "dsp_police", "decided_on"} \
        <= set(schema["properties"])
    assert all("description" in prop for prop in schema["properties"].values())
    assert case_ref in description
    assert "Thursday 24 December 2026" in description  # the due time is shown

    system.sbu("decide", case_ref, "--sin", "--rapid-review", "--rationale",
               "Abuse suspected; criteria met.", *DSPS)
    steps = steps_of(system, case_ref)
    assert steps["dsp-decision"]["state"] == "done"
    # LA aware Tue 22 Dec 2026: 23, 24, 29, 30, 31 Dec (25 and 28 Dec are bank holidays).
    assert (steps["sin-submission"]["state"], steps["sin-submission"]["due"]) == ("open", "2026-12-31")

    system.wait_for_wait(case_ref, "notification-")
    system.sbu("record", case_ref, "sin-submission", "--national-ref", "CSIN-2026-0042",
               "--on", "2026-12-23")
    rapid_review = system.wait_for_wait(f"{case_ref} rapid review", "rr-meeting-")
    assert rapid_review.parameters == {"case_ref": case_ref}
    steps = steps_of(system, case_ref)
    # Notified Wed 23 Dec: 24, 29, 30, 31 Dec, 4 Jan; meeting on the 8th: 7 Jan.
    assert steps["rr-agency-responses:police"]["due"] == "2027-01-04"
    assert steps["rr-meeting"]["due"] == "2027-01-07"
    # The case's own run waits for the partners to be informed too, then it is done.
    system.sbu("record", case_ref, "partners-informed", "--on", "2026-12-23")
    [case_run] = system.runs_named(case_ref)
    assert wait_until(lambda: system.run(case_run.id).state_type.value == "COMPLETED",  # type: ignore[union-attr]
                      timeout=30 + STALL_ALLOWANCE, what="the case run to complete")


ALERT = re.compile(r"\] (Reminder|Overdue|Escalation)", re.IGNORECASE)


def test_an_undone_step_is_reminded_alerted_and_escalated_in_order(
        local_system: SystemFactory, tmp_path: Path) -> None:
    # Case time starts at 04:00 on Monday 11 January 2027 and runs 14400 times faster than wall
    # time (a case day in 6 s, the overdue alert and the first escalation 2 s apart). The DSP
    # decision is due Tuesday: reminder Monday 09:00, overdue alert Wednesday 00:01, escalations
    # Wednesday and Thursday 09:00.
    # The case is referred before `sbu serve` starts (its start-up takes hours of case time at
    # this scale), so serve's catch-up on start creates its run and plans its timer pass; a
    # start-up slow enough to pass the reminder's or the overdue alert's time finds them due with
    # what follows them, and only the latest goes out (the others are recorded as superseded):
    # whatever goes out must still reach the SBU in order, each at most once.
    # It is referred here, in this process, with the case clock started at that moment: `sbu
    # refer` takes seconds to start on a loaded machine, hours of case time, and a step opened
    # after its reminder's time rightly has no reminder.
    start = datetime(2027, 1, 11, 4, 0, tzinfo=UTC)
    system = local_system(time_scale=14400, case_start=start, serving=False)
    system.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(system.settings().sqlalchemy_url).migrate()
    try:
        system.env["SBU_TIME_EPOCH"] = datetime.now(UTC).isoformat()  # serve has not read it yet
        settings = system.settings()
        referral = parse_referral(dict(EXAMPLE_REFERRAL, incident_date="2027-01-10",
                                       la_aware_date="2027-01-10", referred_at="2027-01-11T04:00:00+00:00"),
                                  now=start)
        service = CaseService(store=store, settings=settings, clock=settings.clock())
        case_ref = service.refer(referral, actor=Actor("sbu-officer", Interface.CLI)).case_ref
        system.start()
        alerted_in_order(system, service, case_ref)
    finally:
        store.dispose()


def alerted_in_order(system: LocalSystem, service: CaseService, case_ref: str) -> None:
    """The case's DSP decision, left undone, alerted in order; once made, chased no more."""
    def alerts() -> list[str]:
        """The alerts about this case's DSP decision, in the order the SMTP server took them."""
        return [m.group(1).lower() for s in system.mail_subjects()
                if case_ref in s and "DSPs decide" in s for m in [ALERT.search(s)] if m]

    wait_until(lambda: alerts().count("escalation") >= 2, timeout=90, what="two escalations")
    sent = alerts()
    assert sent == sorted(sent, key=["reminder", "overdue", "escalation"].index)
    assert sent.count("reminder") <= 1
    assert sent.count("overdue") <= 1
    # Each one that did not go out was superseded by a later one of the same pass, and says so.
    trail = [event["action"]
             for event in system.sbu_json("audit", "--case", case_ref, "--limit", "500")["events"]]
    for kind in ("reminder", "overdue"):
        assert (kind in sent) != (f"{kind}-superseded" in trail), (sent, trail)
    system.sbu("decide", case_ref, "--sin", "--rapid-review", "--on", "2027-01-11",
               "--rationale", "Abuse suspected; criteria met.", *DSPS)
    seen = alerts()
    # The decision cancelled the escalation waiting (the latest of the item's timers cancelled: one
    # superseded is cancelled too); nothing goes out by three wall seconds after its time, when a
    # timer pass that fired it would have sent it.
    cancelled = max(timer.fire_at for timer in service.timers(
        case_ref=case_ref, states=(TimerState.CANCELLED,)) if timer.step == "dsp-decision")
    assert not [timer for timer in service.timers(case_ref=case_ref) if timer.step == "dsp-decision"]
    past = cancelled + timedelta(seconds=3 * service.settings.time_scale)
    wait_until(lambda: service.clock.now() > past, timeout=60, interval=0.5,
               what="the cancelled escalation's time to pass")
    assert alerts() == seen, system.mail_subjects()
    assert seen.count("escalation") <= 3  # at most one more crossed paths with the decision


def test_same_referral_twice_gives_one_case_and_one_run(shared_system: LocalSystem, tmp_path: Path) -> None:
    system = shared_system
    # The shared system holds other tests' cases: this test counts the cases it adds.
    before = {row["case_ref"] for row in system.ask("cases")["cases"]}
    first = refer(system, tmp_path / "a.json", external_ref="POL-FLOW-TWICE")
    second = refer(system, tmp_path / "b.json", external_ref="POL-FLOW-TWICE")
    assert first == second
    system.wait_for_wait(first, "dsp-decision")
    assert len(system.runs_named(first)) == 1
    assert [row["case_ref"] for row in system.ask("cases")["cases"]
            if row["case_ref"] not in before] == [first]

    system.sbu("decide", first, "--sin", "--rapid-review", "--rationale", "Criteria met on the facts.", *DSPS)
    conflicting = system.sbu("decide", first, "--no-sin", "--no-rapid-review", "--rationale",
                             "Criteria not met after all.", *DSPS, check=False)
    assert conflicting.returncode == 2
    assert "already has a DSP decision" in conflicting.stderr
    assert len(conflicting.stderr.strip().splitlines()) == 1
    assert steps_of(system, first)["sin-submission"]["state"] == "open"
