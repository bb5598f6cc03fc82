"""The canary referral (docs/architecture.md, "Data protection"): none of a referral's or a decision's
free-text values reaches Prefect, whichever door they came in by, read back through Prefect's own client.

Every field a person can type carries a marker: the referral's external_ref and each child's
la_record_id, the DSP decision's rationale and the three DSPs' names, the names given with
`--by` or typed as `recorded_by` on a dashboard form, and the SIN's national reference. One case
goes through `sbu`; a second goes through the dashboard path, i.e. `resume_flow_run` with the
markers in the run input, exactly what the Prefect UI sends. Once both Rapid Reviews wait, every
object the Prefect API holds is read and searched for the markers. Positive controls keep the test
from passing by reading nothing: the case references must be found, and the markers must be in the
case store (so the dashboard's free text was copied there before Prefect lost it).

The reviews' free text, typed into every form from the decision to the last action closed, is
looked for the same way at the end of the notified case's walk (tests/flows/test_reviews_e2e.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from deployments.local import STALL_ALLOWANCE, LocalSystem, wait_until
from tests.conftest import EXAMPLE_REFERRAL
from tests.flows.canaries import PAGE, email_texts, outbox_settled, resume, scan_prefect, store_rows

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

CASE_START = datetime(2026, 12, 23, 12, 0, tzinfo=UTC)
DAY = "2026-12-23"  # the referral day, and "today" on the case clock


@dataclass(frozen=True)
class Markers:
    """One distinct marker per free field of one case. Every marker contains `token`, which holds
    letters no UUID or hex digest has, so a search for the token finds any marker, whole or cut."""

    token: str
    case: str

    def _mark(self, field_name: str) -> str:
        return f"{self.token}{self.case}{field_name}"

    @property
    def external_ref(self) -> str:
        return f"EXT-{self._mark('ext')}"

    @property
    def children(self) -> tuple[str, str]:
        return (f"LA-{self._mark('c1')}", f"LA-{self._mark('c2')}")

    @property
    def rationale(self) -> str:
        return f"Canary rationale {self._mark('why')}: abuse suspected, criteria met."

    @property
    def dsps(self) -> tuple[str, str, str]:
        return (f"Canary LA DSP {self._mark('dla')}", f"Canary Health DSP {self._mark('dhe')}",
                f"Canary Police DSP {self._mark('dpo')}")

    @property
    def referred_by(self) -> str:
        return f"Canary Referrer {self._mark('byref')}"

    @property
    def decided_by(self) -> str:
        return f"Canary Decider {self._mark('bydec')}"

    @property
    def sin_recorded_by(self) -> str:
        return f"Canary SIN Officer {self._mark('bysin')}"

    @property
    def national_ref(self) -> str:
        return f"CSIN-{self._mark('nat')}"

    def all(self) -> dict[str, str]:
        return {"external_ref": self.external_ref, "child 1": self.children[0],
                "child 2": self.children[1], "rationale": self.rationale,
                **{f"dsp {i + 1}": name for i, name in enumerate(self.dsps)},
                "refer --by": self.referred_by, "decided by": self.decided_by,
                "sin recorded by": self.sin_recorded_by, "national_ref": self.national_ref}


def referral(markers: Markers) -> dict[str, Any]:
    first, second = markers.children
    return dict(EXAMPLE_REFERRAL, external_ref=markers.external_ref, children=[
        {"la_record_id": first, "age_years": 7, "looked_after": False, "care_leaver": False},
        {"la_record_id": second, "age_years": 4, "looked_after": False, "care_leaver": False},
    ])


def refer(system: LocalSystem, path: Path, markers: Markers) -> str:
    path.write_text(json.dumps(referral(markers)))
    outcome = system.sbu_json("refer", str(path), "--by", markers.referred_by)
    assert outcome["created"] is True
    return str(outcome["case_ref"])



def await_recorded(system: LocalSystem, case_ref: str, step: str, *,
                   timeout: float = 30.0 + STALL_ALLOWANCE) -> None:
    """Wait for the store to show `step` done; on failure say where the case's run ended up."""
    def done() -> bool:
        steps = system.ask("status", case_ref)["steps"]
        return any(row["step"] == step and row["state"] == "done" for row in steps)

    try:
        wait_until(done, timeout=timeout, what=f"{case_ref} {step} to be recorded")
    except TimeoutError:
        runs = system.runs_named(case_ref)
        states = [(r.state.name, r.state.message) if r.state else None for r in runs]
        pytest.fail(f"{step} answered on the dashboard was never recorded in the case store; "
                    f"the case run is {states}")


def test_a_canary_referral_leaves_nothing_personal_in_prefect(
        shared_system: LocalSystem, tmp_path: Path) -> None:
    test_started = datetime.now(UTC) - timedelta(seconds=5)
    token = f"zq{uuid4().hex[:10]}"  # z and q: never in a UUID or a hex digest
    by_cli, by_ui = Markers(token, "cli"), Markers(token, "ui")
    # Its case clock starts at CASE_START; what other tests left in it is searched too.
    system = shared_system
    assert system.settings().time_start == CASE_START
    cli_case = refer(system, tmp_path / "cli.json", by_cli)
    ui_case = refer(system, tmp_path / "ui.json", by_ui)
    assert cli_case != ui_case

    # (a) Through `sbu`.
    system.wait_for_wait(cli_case, "dsp-decision")
    options = ("--dsp-la", "--dsp-health", "--dsp-police")
    dsps = [arg for option, name in zip(options, by_cli.dsps, strict=True) for arg in (option, name)]
    system.sbu("decide", cli_case, "--sin", "--rapid-review", "--rationale", by_cli.rationale, *dsps,
               "--on", DAY, "--by", by_cli.decided_by)
    system.wait_for_wait(cli_case, "notification-")
    system.sbu("record", cli_case, "sin-submission", "--national-ref", by_cli.national_ref, "--on", DAY,
               "--by", by_cli.sin_recorded_by)

    # (b) Through the dashboard: the forms' fields, typed in, sent as the UI sends them.
    run = system.wait_for_wait(ui_case, "dsp-decision")
    signatures = {field: {"name": name, "deputy": False}
                  for field, name in zip(("dsp_la", "dsp_health", "dsp_police"), by_ui.dsps, strict=True)}
    resume(system, run.id, {"sin": "yes", "rapid_review": "yes", "rationale": by_ui.rationale,
                            **signatures, "decided_on": DAY, "recorded_by": by_ui.decided_by})
    run = system.wait_for_wait(ui_case, "notification-")
    resume(system, run.id, {"record": {"sin_submission__national_ref": by_ui.national_ref,
                                       "sin_submission__completed_on": DAY},
                            "recorded_by": by_ui.sin_recorded_by})
    await_recorded(system, ui_case, "sin-submission")

    for case_ref in (cli_case, ui_case):
        system.wait_for_wait(f"{case_ref} rapid review", "rr-meeting-")
    wait_until(lambda: outbox_settled(system), timeout=60 + STALL_ALLOWANCE,
               what="the outbox to deliver its mail")

    # Positive control on the store: every marker is there, the dashboard's included, so the free
    # text was copied before it left Prefect.
    for markers, case_ref in ((by_cli, cli_case), (by_ui, ui_case)):
        [(external_ref,)] = store_rows(system, "SELECT external_ref FROM cases WHERE case_ref = ?", case_ref)
        assert external_ref == markers.external_ref
        children = store_rows(system, "SELECT ch.la_record_id FROM case_children ch JOIN cases c "
                                      "ON c.id = ch.case_id WHERE c.case_ref = ? ORDER BY ch.position",
                              case_ref)
        assert [row[0] for row in children] == list(markers.children)
        [(rationale, sign_off, recorded_by)] = store_rows(
            system, "SELECT d.rationale, d.sign_off, d.recorded_by FROM decisions d JOIN cases c "
                    "ON c.id = d.case_id WHERE c.case_ref = ?", case_ref)
        assert rationale == markers.rationale
        assert [row["name"] for row in json.loads(sign_off)["sign_off"]] == list(markers.dsps)
        assert recorded_by == markers.decided_by
        [(details, completed_by)] = store_rows(
            system, "SELECT s.details, s.completed_by FROM items s JOIN cases c ON c.id = s.case_id "
                    "WHERE c.case_ref = ? AND s.step = 'sin-submission'", case_ref)
        assert json.loads(details)["national_ref"] == markers.national_ref
        assert completed_by == markers.sin_recorded_by
    audit_actors = {row[0] for row in store_rows(system, "SELECT actor FROM audit_events")}
    assert by_cli.referred_by in audit_actors

    with system.client() as client:
        scan = scan_prefect(client, events_since=test_started)

    # Positive control on the scan: it read the runs, their inputs and artifacts of both cases.
    for case_ref in (cli_case, ui_case):
        kinds = scan.kinds_with(case_ref)
        assert {"flow run", "run input", "artifact"} <= kinds, (case_ref, kinds, scan.counts)
    assert scan.counts.get("task run", 0) > 0, scan.counts
    assert scan.counts.get("deployment", 0) > 0, scan.counts
    # The dashboard's answers, once read, are gone from the case run (docs/architecture.md, "Data
    # protection").
    [ui_run] = system.runs_named(ui_case)
    with system.client() as client:
        left = [item.key for item in client.filter_flow_run_input(
            ui_run.id, key_prefix="", limit=PAGE, exclude_keys=set())]
    assert not [key for key in left if key.endswith("-response")], left

    leaks = scan.hits(token)
    assert not leaks, (f"{len(leaks)} marker(s) found in Prefect (read {scan.counts}); markers: "
                       f"{by_cli.all() | by_ui.all()}:\n" + "\n".join(leaks[:40]))

    # Nor in any email: the SMTP server's messages, and anything still queued in the outbox.
    emails = email_texts(system)
    assert any(cli_case.lower() in text for _, text in emails)
    assert any(ui_case.lower() in text for _, text in emails)
    mailed = [subject for subject, text in emails if token in text]
    assert not mailed, f"markers in email: {mailed}"
    queued = store_rows(system, "SELECT subject, body_text, body_html, recipients FROM outbox")
    assert queued
    assert not [row[0] for row in queued if token in json.dumps(row, default=str).lower()]
