"""The forms on the Prefect dashboard, end to end: answered the way the Prefect UI answers
them, with `resume_flow_run(run_id, run_input=...)` against the form's schema, on a real Prefect
server with `sbu serve`'s runner. The dashboard and `sbu` must enforce the same rules and leave the
same record in the case store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from deployments.local import STALL_ALLOWANCE, LocalSystem, wait_until
from tasks.prefect.resume import waiting_key
from tests.bad_inputs import echoes
from tests.conftest import DSP_OPTIONS, EXAMPLE_REFERRAL, SIGNATURES
from tests.flows.conftest import SystemFactory

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

CASE_START = datetime(2026, 12, 23, 12, 0, tzinfo=UTC)
DAY = "2026-12-23"  # the referral day, and "today" on the case clock
DSPS = SIGNATURES
# How a refused answer's form begins.
REFUSED = "> **Your answer was not recorded.**"


def refer(system: LocalSystem, path: Path, **changes: Any) -> str:
    path.write_text(json.dumps(dict(EXAMPLE_REFERRAL, **changes)))
    return str(system.sbu_json("refer", str(path))["case_ref"])


def status(system: LocalSystem, case_ref: str) -> dict[str, Any]:
    result: dict[str, Any] = system.sbu_json("status", case_ref)
    return result


def steps_of(system: LocalSystem, case_ref: str) -> dict[str, dict[str, Any]]:
    """The case's items by label: the step, and its subject after a colon (`rr-agency-responses:police`)."""
    return {f"{row['step']}:{row['subject']}" if row["subject"] else row["step"]: row
            for row in status(system, case_ref)["steps"]}


def resume(system: LocalSystem, run_id: UUID, run_input: dict[str, Any]) -> None:
    """What the Prefect UI does when a form is submitted."""
    with system.client() as client:
        result = client.resume_flow_run(run_id, run_input=run_input)
    assert result.status.value == "ACCEPT", result.details


def current_key(system: LocalSystem, run_id: UUID) -> str | None:
    return waiting_key(system.run(run_id))


def next_wait(system: LocalSystem, run_id: UUID, after: str, *,
              timeout: float = 60.0 + STALL_ALLOWANCE) -> str:
    """The key the run waits on next, once it has moved on from `after`."""
    def moved() -> str | None:
        key = current_key(system, run_id)
        return key if key is not None and key != after else None

    return wait_until(moved, timeout=timeout, what=f"the run to wait again after {after}")


def test_a_looked_after_childs_death_cannot_be_left_unnotified_on_the_dashboard(
        local_system: SystemFactory, tmp_path: Path) -> None:
    system = local_system(case_start=CASE_START)
    case_ref = refer(system, tmp_path / "referral.json", external_ref="POL-2026-LAC-1",
                     category="death", abuse_or_neglect="not-suspected",
                     children=[{"la_record_id": "LA-000777", "age_years": 15, "looked_after": True,
                                "care_leaver": False}])
    run = system.wait_for_wait(case_ref, "dsp-decision")
    assert waiting_key(run) == "dsp-decision"

    # "No SIN" for a looked-after child's death: refused, and asked again on a fresh key.
    resume(system, run.id, {"sin": "no", "rapid_review": "no",
                            "rationale": "No concerns about care; natural causes.",
                            **DSPS, "decided_on": DAY, "recorded_by": "Dana Duty"})
    run = system.wait_for_wait(case_ref, "dsp-decision-2")
    assert waiting_key(run) == "dsp-decision-2"
    with system.client() as client:
        description = json.loads(client.read_flow_run_input(run.id, "suspended-dsp-decision-2-description"))
        schema = json.loads(client.read_flow_run_input(run.id, "suspended-dsp-decision-2-schema"))
    # The reason first, above the form's title; what was chosen filled in again, not what was typed.
    assert description.startswith(REFUSED)
    assert "looked-after" in description.split(f"## DSP decision for case {case_ref}", 1)[0]
    assert case_ref in description
    assert {"sin", "rapid_review", "rationale", "dsp_la", "dsp_health", "dsp_police", "decided_on",
            "recorded_by"} \
        <= set(schema["properties"])
    assert {name: prop["default"] for name, prop in schema["properties"].items() if "default" in prop} == {
        "sin": "no", "rapid_review": "no", "decided_on": DAY, **{role: {"deputy": False} for role in DSPS}}
    assert "natural causes" not in json.dumps(schema)
    view = status(system, case_ref)
    assert (view["status"], view["path"]) == ("awaiting-decision", None)
    assert steps_of(system, case_ref)["dsp-decision"]["state"] == "open"

    # Bad input: hidden characters and a header line in a name and a rationale,
    # then a bidi control in "Recorded by". Each is refused, nothing is recorded, and the form is
    # asked again with the reason, which names the fields and never quotes what was typed.
    typed_name = "Dana\u202eeeL\r\nBcc: someone@attacker.test"
    typed_rationale = "Zq9wX vmkT7\u200b Pq8rL \x1b[2J Hb4nM."
    for attempt, answer, fields in (
            (3, {"rationale": typed_rationale, "dsp_la": {"name": typed_name}},
             ("“Rationale”", "“Name” of “Director of Children's Services (local authority)”")),
            (4, {"recorded_by": "Dana\u2066 Duty"}, ("“Recorded by”",))):
        resume(system, run.id, {"sin": "yes", "rapid_review": "no",
                                "rationale": "Looked-after child: notification is mandatory.",
                                **DSPS, "decided_on": DAY, "recorded_by": "Dana Duty", **answer})
        run = system.wait_for_wait(case_ref, f"dsp-decision-{attempt}")
        with system.client() as client:
            description = json.loads(client.read_flow_run_input(
                run.id, f"suspended-dsp-decision-{attempt}-description"))
        reason = description.split("## DSP decision", 1)[0]
        assert reason.startswith(REFUSED)
        assert all(field in reason for field in fields), reason
        assert not any(code in reason for code in ("dsp_la", "rationale", "recorded_by")), reason
        assert not echoes(typed_name, description)
        assert not echoes(typed_rationale, description)
        assert not echoes("Dana\u2066 Duty", description, known="Dana")
        assert steps_of(system, case_ref)["dsp-decision"]["state"] == "open"

    # A SIN without a Rapid Review is allowed when abuse or neglect is not suspected.
    resume(system, run.id, {"sin": "yes", "rapid_review": "no",
                            "rationale": "Looked-after child: notification is mandatory.",
                            **DSPS, "decided_on": DAY, "recorded_by": "Morgan Lead"})
    system.wait_for_wait(case_ref, "notification-")
    view = status(system, case_ref)
    assert (view["status"], view["path"]) == ("in-progress", "sin-only")
    steps = steps_of(system, case_ref)
    decision = steps["dsp-decision"]
    assert (decision["state"], decision["completed_on"], decision["completed_by"]) == \
        ("done", DAY, "Morgan Lead")
    assert steps["sin-submission"]["state"] == "open"
    assert "rr-agency-responses" not in steps

    # The SIN submission, entered on the dashboard too: the store records it with its author.
    run = system.wait_for_wait(case_ref, "notification-")
    resume(system, run.id, {"record": {"sin_submission__national_ref": "CSIN-2026-0777",
                                       "sin_submission__completed_on": DAY},
                            "recorded_by": "Alex Notifier"})

    def sin_recorded() -> dict[str, Any] | None:
        row = steps_of(system, case_ref)["sin-submission"]
        return row if row["state"] == "done" else None

    try:
        sin = wait_until(sin_recorded, timeout=30 + STALL_ALLOWANCE,
                         what="the dashboard's SIN submission to be recorded")
    except TimeoutError:
        states = [(r.state.name, (r.state.message or "")[:200]) if r.state else None
                  for r in system.runs_named(case_ref)]
        pytest.fail(f"the SIN submission answered on the dashboard was never recorded; case run: {states}")
    assert (sin["completed_on"], sin["completed_by"]) == (DAY, "Alex Notifier")


def test_the_rapid_review_takes_records_from_the_dashboard_and_from_sbu(
        local_system: SystemFactory, tmp_path: Path) -> None:
    system = local_system(case_start=CASE_START)
    # One involved agency, so the form's count of information received reads "1 of 1".
    case_ref = refer(system, tmp_path / "referral.json", agencies_involved=["police"])
    system.wait_for_wait(case_ref, "dsp-decision")
    system.sbu("decide", case_ref, "--sin", "--rapid-review", "--on", DAY,
               "--rationale", "Abuse suspected; criteria met.", *DSP_OPTIONS)
    system.wait_for_wait(case_ref, "notification-")
    system.sbu("record", case_ref, "sin-submission", "--national-ref", "CSIN-2026-0042", "--on", DAY)
    run = system.wait_for_wait(f"{case_ref} rapid review", "rr-meeting-")
    first_key = waiting_key(run)
    assert first_key is not None
    assert steps_of(system, case_ref)["rr-agency-responses:police"]["state"] == "open"

    # (b) The agency's information, entered on the dashboard: recorded, and a fresh wait.
    resume(system, run.id, {"record": {"rr_agency_responses__agency": "Police",
                                       "rr_agency_responses__completed_on": DAY},
                            "recorded_by": "Robin Rr"})
    second_key = next_wait(system, run.id, after=first_key)
    assert second_key.startswith("rr-meeting-")
    responses = steps_of(system, case_ref)["rr-agency-responses:police"]
    assert (responses["state"], responses["completed_on"], responses["completed_by"]) == \
        ("done", DAY, "Robin Rr")
    with system.client() as client:
        description = json.loads(client.read_flow_run_input(run.id, f"suspended-{second_key}-description"))
        left = [item.key for item in client.filter_flow_run_input(
            run.id, key_prefix="", limit=200, exclude_keys=set())]
    assert "1 of 1" in description
    # The answer (with the name typed into it) was removed once recorded (docs/architecture.md, "Data
    # protection").
    assert f"suspended-{first_key}-response" not in left

    # (c) `sbu record` while the run waits: the store records it and the run wakes to a new key.
    system.sbu("record", case_ref, "rr-meeting", "--on", DAY, "--by", "Sam Sbu")
    third_key = next_wait(system, run.id, after=second_key)
    assert third_key not in (first_key, second_key)
    meeting = steps_of(system, case_ref)["rr-meeting"]
    assert (meeting["state"], meeting["completed_by"]) == ("done", "Sam Sbu")
    assert steps_of(system, case_ref)["rr-report-to-panel"]["state"] == "open"

