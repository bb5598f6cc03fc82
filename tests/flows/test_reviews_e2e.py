"""The reviews run to the end, end to end: a real Prefect server, `sbu serve`, a real SMTP
server on loopback, the `sbu` command and the dashboard's forms (answered as the Prefect UI answers
them), at a fast time scale.

- A notified case from referral to its CSPR's publication, with its action plan closed, every due
  date checked against the rules by hand. On the way: one agency late (chased, escalated, the
  meeting held without it, its late information still recorded); the meeting moved (the update
  keeps the invitation's UID with a higher SEQUENCE); an IMR received with sections missing
  (flagged, chased for the rest); and the case closing only when its last action closes.
- A near miss through its Rapid Review on its longer clocks, and the National Panel disagreeing
  with "no CSPR", which commissions one.
"""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, date, datetime
from email.message import EmailMessage
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from icalendar import Calendar

from deployments.local import STALL_ALLOWANCE, LocalSystem, wait_until
from models.calendar import london_date
from tasks.holiday_cache import calendar_for
from tasks.prefect.resume import waiting_key
from tests.conftest import DSP_OPTIONS, EXAMPLE_REFERRAL, SIGNATURES
from tests.flows.conftest import SystemFactory

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

MOVE_ON = 60.0 + STALL_ALLOWANCE


# -- what a user does and sees ---------------------------------------------------------------------------

def refer(system: LocalSystem, path: Path, **changes: Any) -> str:
    path.write_text(json.dumps(dict(EXAMPLE_REFERRAL, **changes)))
    return str(system.sbu_json("refer", str(path))["case_ref"])


def items(system: LocalSystem, case_ref: str) -> dict[str, dict[str, Any]]:
    """The case's items by label (`rr-agency-responses:police`), from `sbu status --json`."""
    return {f"{row['step']}:{row['subject']}" if row["subject"] else row["step"]: row
            for row in system.sbu_json("status", case_ref)["steps"]}


def due(system: LocalSystem, case_ref: str) -> dict[str, str]:
    return {label: row["due"] for label, row in items(system, case_ref).items()}


def today(system: LocalSystem) -> date:
    return london_date(system.settings().clock().now())


def on(system: LocalSystem, day: str) -> str:
    """`day`, once the case clock has reached it (a record can never be dated in the future)."""
    wait_until(lambda: today(system) >= date.fromisoformat(day), timeout=120,
               what=f"case time to reach {day}")
    return day


def record(system: LocalSystem, case_ref: str, step: str, day: str, *options: str) -> dict[str, Any]:
    result: dict[str, Any] = system.sbu_json("record", case_ref, step, "--on", on(system, day), *options)
    return result


def answer(system: LocalSystem, run_name: str, key_prefix: str, run_input: dict[str, Any]) -> UUID:
    """Submit a dashboard form as the Prefect UI does, once the run waits on it; then wait for the
    run to move past that key."""
    run = system.wait_for_wait(run_name, key_prefix, timeout=MOVE_ON)
    key = waiting_key(run)
    with system.client() as client:
        result = client.resume_flow_run(run.id, run_input={**run_input, "recorded_by": "Dana Dashboard"})
    assert result.status.value == "ACCEPT", result.details

    def moved_on() -> bool:
        # Waiting on another key, or ended: not merely running, which it is while it records.
        now = system.run(run.id)
        waits_on = waiting_key(now)
        return (waits_on is not None and waits_on != key) or bool(now.state and now.state.is_final())

    wait_until(moved_on, timeout=MOVE_ON, what=f"{run_name} to take the answer and move on")
    return run.id


def messages(system: LocalSystem, *words: str) -> list[EmailMessage]:
    """The messages the SMTP server took whose subject has every one of `words`."""
    found = []
    for received in system.sink.messages if system.sink else []:
        if all(word in received.subject for word in words):
            parsed = email.message_from_bytes(received.content, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            found.append(parsed)
    return found


def invitation(message: EmailMessage) -> Any:
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            [event] = Calendar.from_ical(payload).walk("VEVENT")
            return event
    raise AssertionError("no invitation attached")


# -- a notified case, referral to publication -----------------------------------------------------------

def test_a_notified_case_runs_from_referral_to_publication_and_closes_with_its_last_action(
        local_system: SystemFactory, tmp_path: Path) -> None:
    # Case time starts at noon on Friday 15 January 2027 and runs an hour a second. The case was
    # referred, decided and notified on Monday 11 January, before `sbu serve` started.
    system = local_system(time_scale=3600, case_start=datetime(2027, 1, 15, 12, 0, tzinfo=UTC),
                          serving=False)
    ref = refer(system, tmp_path / "referral.json", external_ref="POL-2027-0011", incident_date="2027-01-10",
                la_aware_date="2027-01-10", referred_at="2027-01-11T09:00:00+00:00",
                agencies_involved=["police", "health", "education"])
    system.sbu("decide", ref, "--sin", "--rapid-review", "--rationale", "Abuse suspected; criteria met.",
               *DSP_OPTIONS, "--deputy", "police", "--on", "2027-01-11")
    record(system, ref, "sin-submission", "2027-01-11", "--national-ref", "CSIN-2027-0011")
    record(system, ref, "partners-informed", "2027-01-12")
    # Notified Mon 11 Jan: each agency's information in 5 working days (Mon 18 Jan); the meeting on
    # the 8th (Thu 21 Jan); the report to the Panel in 15 (12..15, 18..22, 25..29 Jan, Mon 1 Feb).
    assert due(system, ref) == {"dsp-decision": "2027-01-12", "sin-submission": "2027-01-15",
                                "partners-informed": "2027-01-15", "rr-agency-responses:police": "2027-01-18",
                                "rr-agency-responses:health": "2027-01-18",
                                "rr-agency-responses:education": "2027-01-18",
                                "rr-meeting": "2027-01-21", "rr-report-to-panel": "2027-02-01"}
    system.start()
    review = f"{ref} rapid review"

    # Police answer with `sbu`, health on the dashboard; education stays silent.
    record(system, ref, "rr-agency-responses", "2027-01-14", "--agency", "police")
    answer(system, review, "rr-meeting-", {"record": {"rr_agency_responses__agency": "Health (ICB)",
                                                      "rr_agency_responses__completed_on": "2027-01-15"}})
    # The meeting moved on the dashboard to Tuesday 19 January at 14:00: everyone gets an update.
    answer(system, review, "rr-meeting-", {"record": {
        "rr_meeting_moved__meeting_on": "2027-01-19", "rr_meeting_moved__start_time": "14:00",
        "rr_meeting_moved__place": "Civic Centre, Room 4",
        "rr_meeting_moved__reason": "The Chief Superintendent is in court on the 21st."}})
    wait_until(lambda: messages(system, ref, "Rapid Review meeting moved"), timeout=MOVE_ON,
               what="the invitation's update")
    [first] = messages(system, ref, "Rapid Review meeting:")
    [update] = messages(system, ref, "Rapid Review meeting moved")
    original, moved = invitation(first), invitation(update)
    assert str(moved["UID"]) == str(original["UID"])
    assert (int(original["SEQUENCE"]), int(moved["SEQUENCE"])) == (0, 1)
    assert original.decoded("DTSTART").isoformat() == "2027-01-21T10:00:00+00:00"
    assert moved.decoded("DTSTART").isoformat() == "2027-01-19T14:00:00+00:00"
    assert str(moved["LOCATION"]) == "Civic Centre, Room 4"
    assert items(system, ref)["rr-meeting"]["due"] == "2027-01-19"

    # Education's information is chased: overdue after Monday, escalated to the DSPs on Tuesday.
    wait_until(lambda: messages(system, ref, "ESCALATION", "(education)"), timeout=240,
               what="education's escalation")
    assert messages(system, ref, "OVERDUE", "(education)")
    assert not messages(system, ref, "OVERDUE", "(police)")
    # The meeting goes ahead without it; its outcome is due the next working day.
    record(system, ref, "rr-meeting", "2027-01-19")
    meeting = items(system, ref)["rr-meeting"]
    assert meeting["details"]["held_without"] == ["education"]
    assert items(system, ref)["rr-outcome"]["due"] == "2027-01-20"
    # The outcome, signed off by the three DSP roles on the dashboard, recommends a local CSPR.
    answer(system, review, "rr-outcome-", {"record": {
        "rr_outcome__immediate_actions": "Siblings seen by social care; GP alerted.",
        "rr_outcome__learning": "Information about the family was not shared at discharge.",
        "rr_outcome__recommendation": "A local CSPR",
        "rr_outcome__rationale": "Systemic learning across agencies.",
        **{f"rr_outcome__{role}": signature for role, signature in SIGNATURES.items()},
        "rr_outcome__decided_on": on(system, "2027-01-19")}})
    wait_until(lambda: messages(system, ref, "Child Safeguarding Practice Review commissioned"),
               timeout=MOVE_ON, what="the CSPR's commissioning email")
    status = system.sbu_json("status", ref)
    assert (status["review"], status["anchors"]["cspr-commissioned"]) == ("local-cspr", "2027-01-19")
    assert status["anchors"]["planned-publication"] == "2027-07-19"  # six calendar months on
    # Commissioned Tue 19 Jan: 20..22, 25..29 Jan, 1, 2 Feb (10); 3..5, 8..12, 15, 16 Feb (20).
    # 60 working days is Thu 15 Apr (Good Friday 26 Mar and Easter Monday 29 Mar skipped); 30 more
    # is Fri 28 May (Mon 3 May skipped); 20 more is Mon 28 Jun (Mon 31 May skipped).
    assert {label: d for label, d in due(system, ref).items() if label.startswith(("cspr", "rr-action"))} == {
        "cspr-reviewer-appointed": "2027-02-02", "cspr-terms-of-reference": "2027-02-16",
        "cspr-imr-requests": "2027-02-02", "cspr-family-engagement": "2027-04-15",
        "cspr-draft-report": "2027-05-28", "cspr-final-report": "2027-06-28",
        # The 7th working day strictly before Mon 19 Jul: 16, 15, 14, 13, 12, 9, 8 Jul.
        "cspr-report-to-panel": "2027-07-08", "cspr-publication": "2027-07-19",
        "rr-action-plan": "2027-02-16"}
    system.wait_for_wait(f"{ref} cspr", "cspr-setup-", timeout=MOVE_ON)

    # Education's late information is still taken.
    record(system, ref, "rr-agency-responses", "2027-01-20", "--agency", "education")
    late = items(system, ref)["rr-agency-responses:education"]
    assert (late["state"], late["completed_on"], late["due"]) == ("done", "2027-01-20", "2027-01-18")
    # The report to the Panel carries the outcome; the Panel agrees.
    record(system, ref, "rr-report-to-panel", "2027-01-20", "--reference", "NP-2027-11")
    assert items(system, ref)["rr-panel-response"]["due"] == "2027-02-10"  # 15 working days on
    record(system, ref, "rr-panel-response", "2027-01-21", "--response", "agree")

    # The CSPR: reviewers, terms of reference, IMRs by the date the panel set (Fri 5 Feb).
    record(system, ref, "cspr-reviewer-appointed", "2027-01-21", "--reviewer", "Dr Jo Reviewer")
    record(system, ref, "cspr-terms-of-reference", "2027-01-21")
    record(system, ref, "cspr-imr-requests", "2027-01-21", "--imrs-due", "2027-02-05")
    assert {label: d for label, d in due(system, ref).items() if label.startswith("cspr-imr:")} == {
        "cspr-imr:police": "2027-02-05", "cspr-imr:health": "2027-02-05", "cspr-imr:education": "2027-02-05"}
    wait_until(lambda: len(messages(system, ref, "Individual Management Review requested")) == 3,
               timeout=MOVE_ON, what="the three IMR requests")
    record(system, ref, "cspr-imr", "2027-01-22", "--agency", "police")
    # Health's IMR arrives without its chronology and lessons learned: flagged, and chased for the
    # rest within 5 working days of the check (the case clock runs on meanwhile, so of whichever
    # day the check fell on).
    checked_from = today(system)
    answer(system, f"{ref} cspr", "cspr-evidence-", {"record": {
        "cspr_imr__agency": "Health (ICB)", "cspr_imr__completed_on": on(system, "2027-01-22"),
        "cspr_imr__missing_sections": ["Chronology", "Lessons learned"]}})
    checked_by = today(system)
    health = items(system, ref)["cspr-imr:health"]
    calendar = calendar_for(system.settings())
    assert health["state"] == "open"
    assert calendar.add_working_days(checked_from, 5) <= date.fromisoformat(health["due"]) \
        <= calendar.add_working_days(checked_by, 5)
    assert health["details"]["sections"] == {
        "chronology": "missing", "analysis-of-key-decisions": "present", "missed-opportunities": "present",
        "good-practice": "present", "lessons-learned": "missing", "recommendations": "present"}
    wait_until(lambda: messages(system, ref, "from health incomplete: 2 sections missing"), timeout=MOVE_ON,
               what="health's IMR to be chased")
    [chase] = messages(system, ref, "from health incomplete")
    body = chase.get_body(preferencelist=("plain",))
    assert body is not None
    assert "Chronology" in body.get_content()
    record(system, ref, "cspr-imr", "2027-01-25", "--agency", "health")
    record(system, ref, "cspr-imr", "2027-01-25", "--agency", "education")
    record(system, ref, "cspr-family-engagement", "2027-01-25", "--engagement", "declined",
           "--reason", "The family asked not to take part.")
    record(system, ref, "cspr-draft-report", "2027-01-26")
    record(system, ref, "cspr-final-report", "2027-01-26")
    # Publication planned for Monday 1 March: the report goes to the Panel by the 7th working day
    # before it (26, 25, 24, 23, 22, 19, 18 Feb).
    system.sbu("retime", ref, "planned-publication", "--to", "2027-03-01",
               "--reason", "The partnership board meets on the 1st of March.")
    assert items(system, ref)["cspr-report-to-panel"]["due"] == "2027-02-18"
    record(system, ref, "cspr-report-to-panel", "2027-01-26")
    record(system, ref, "cspr-publication", "2027-01-27", "--reference", "LSCP-CSPR-2027-01")
    assert items(system, ref)["cspr-action-plan"]["due"] == "2027-02-24"  # 20 working days on

    # The action plan: one action from each review, each chased until closed with its evidence.
    system.sbu("action", "add", ref, "--source", "rapid-review", "--agency", "health",
               "--owner-role", "Named Nurse", "--summary", "Audit discharge information sharing.",
               "--due", "2027-03-31")
    system.sbu("action", "add", ref, "--source", "cspr", "--agency", "police",
               "--owner-role", "Detective Inspector", "--summary", "Brief officers on referral thresholds.",
               "--due", "2027-04-30")
    assert {label: d for label, d in due(system, ref).items() if label.startswith("action:")} == {
        "action:a1": "2027-03-31", "action:a2": "2027-04-30"}
    system.wait_for_wait(f"{ref} action plan", "actions-", timeout=MOVE_ON)
    record(system, ref, "rr-action-plan", "2027-01-27")
    record(system, ref, "cspr-action-plan", "2027-01-27")
    system.sbu("action", "note", ref, "a1", "--note", "Audit scoped with the ward manager.",
               "--evidence", "AUD-7")
    actions = {row["action"]: row for row in system.sbu_json("action", "list", ref)["actions"]}
    assert (actions["a1"]["owner_role"], actions["a1"]["notes"], actions["a1"]["evidence_ref"]) == (
        "Named Nurse", 1, "AUD-7")
    # Closed today (the default): the actions were added on whichever day the running case clock
    # had reached, and an action cannot close before it was added.
    system.sbu("action", "close", ref, "a2", "--evidence", "BRIEFING-2027-02")
    assert system.sbu_json("status", ref)["status"] == "in-progress"  # a1 is still open
    closed = system.sbu_json("action", "close", ref, "a1", "--evidence", "AUD-7-FINAL")
    assert closed["closed"] is True
    assert system.sbu_json("status", ref)["stage"] == "closed"
    wait_until(lambda: messages(system, ref, "Case closed"), timeout=MOVE_ON, what="the case-closed email")
    # Every run of the case finishes.
    for name in (ref, review, f"{ref} cspr", f"{ref} action plan"):
        wait_until(partial(completed, system, name), timeout=MOVE_ON, what=f"{name} to complete")


def completed(system: LocalSystem, name: str) -> bool:
    runs = system.runs_named(name)
    return any(r.state_type is not None and r.state_type.value == "COMPLETED" for r in runs)


# -- a near miss, and the Panel's disagreement -------------------------------------------------------------

def test_a_near_miss_on_its_longer_clocks_and_the_panel_disagreeing_with_no_cspr(
        local_system: SystemFactory, tmp_path: Path) -> None:
    # Wall-clock speed, on Monday 11 January 2027 all day: every record is dated that day.
    system = local_system(case_start=datetime(2027, 1, 11, 12, 0, tzinfo=UTC))
    near_miss = refer(system, tmp_path / "near.json", external_ref="POL-2027-NM", category="near-miss",
                      incident_date="2027-01-10", la_aware_date="2027-01-10",
                      referred_at="2027-01-11T09:00:00+00:00", agencies_involved=["police", "health"])
    notified = refer(system, tmp_path / "notified.json", external_ref="POL-2027-PD",
                     incident_date="2027-01-10", la_aware_date="2027-01-10",
                     referred_at="2027-01-11T09:00:00+00:00", agencies_involved=["police"])
    system.sbu("decide", near_miss, "--no-sin", "--rapid-review", "--rationale", "Learning from a near miss.",
               *DSP_OPTIONS, "--on", "2027-01-11")
    system.sbu("decide", notified, "--sin", "--rapid-review", "--rationale", "Abuse suspected; criteria met.",
               *DSP_OPTIONS, "--on", "2027-01-11")

    # The near miss's Rapid Review counts from the decision on its longer clocks: 10 working days
    # for the agencies (12..15, 18..22, Mon 25 Jan) and the meeting on the 15th (26..29 Jan, Mon 1 Feb);
    # nothing goes to the Panel.
    system.wait_for_wait(f"{near_miss} rapid review", "rr-meeting-", timeout=MOVE_ON)
    assert due(system, near_miss) == {"dsp-decision": "2027-01-12",
                                      "rr-agency-responses:health": "2027-01-25",
                                      "rr-agency-responses:police": "2027-01-25", "rr-meeting": "2027-02-01"}
    for agency in ("police", "health"):
        record(system, near_miss, "rr-agency-responses", "2027-01-11", "--agency", agency)
    record(system, near_miss, "rr-meeting", "2027-01-11")
    system.sbu("record", near_miss, "rr-outcome", "--on", "2027-01-11", "--immediate-actions", "None needed.",
               "--learning", "Escalation routes were unclear.", "--recommendation", "no-cspr",
               "--rationale", "Single-agency learning only.", *DSP_OPTIONS)
    refused = system.sbu("record", near_miss, "rr-report-to-panel", "--on", "2027-01-11", check=False)
    assert refused.returncode == 2
    assert "not waiting for rr-report-to-panel" in refused.stderr
    record(system, near_miss, "rr-action-plan", "2027-01-11")
    assert system.sbu_json("status", near_miss)["status"] == "closed"  # no actions, nothing open

    # The notified case: the Rapid Review recommends no CSPR, the Panel disagrees, and a CSPR is
    # commissioned on the Panel's response.
    record(system, notified, "sin-submission", "2027-01-11", "--national-ref", "CSIN-2027-0012")
    record(system, notified, "rr-agency-responses", "2027-01-11", "--agency", "police")
    record(system, notified, "rr-meeting", "2027-01-11")
    system.sbu("record", notified, "rr-outcome", "--on", "2027-01-11",
               "--immediate-actions", "Plan reviewed.",
               "--learning", "Thresholds were applied late.", "--recommendation", "no-cspr",
               "--rationale", "The learning is already in hand.", *DSP_OPTIONS)
    assert not system.runs_named(f"{notified} cspr")
    record(system, notified, "rr-report-to-panel", "2027-01-11")
    record(system, notified, "rr-panel-response", "2027-01-11", "--response", "disagree")
    status = system.sbu_json("status", notified)
    assert (status["review"], status["anchors"]["cspr-commissioned"]) == ("local-cspr", "2027-01-11")
    system.wait_for_wait(f"{notified} cspr", "cspr-setup-", timeout=MOVE_ON)
    wait_until(lambda: messages(system, notified, "Child Safeguarding Practice Review commissioned"),
               timeout=MOVE_ON, what="the CSPR's commissioning email")
    [commissioned] = messages(system, notified, "Child Safeguarding Practice Review commissioned")
    text = commissioned.get_body(preferencelist=("plain",))
    assert text is not None
    assert "National Panel" in text.get_content()
