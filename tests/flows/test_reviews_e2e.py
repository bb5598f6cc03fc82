"""The reviews run to the end, end to end: a real Prefect server, `sbu serve`, a real SMTP
server on loopback, the `sbu` command and the dashboard's forms (answered as the Prefect UI answers
them), at a fast time scale.

- A notified case from referral to its CSPR's publication, with its action plan closed, every due
  date checked against the rules by hand. On the way: one agency late (chased, escalated, the
  meeting held without it, its late information still recorded); the meeting moved (the update
  keeps the invitation's UID with a higher SEQUENCE); an IMR received with sections missing
  (flagged, chased for the rest); and the case closing only when its last action closes. Beside
  it, a second case goes through every form on the dashboard; every free-text field of both
  carries a canary marker (tests/flows/canaries.py), which at the end must be in the case store
  and nowhere in Prefect, the logs or email (bar the meeting's place, in its invitation).
- A near miss through its Rapid Review on its longer clocks, and the National Panel disagreeing
  with "no CSPR", which commissions one.
"""

from __future__ import annotations

import email
import email.policy
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from icalendar import Calendar

from deployments.local import STALL_ALLOWANCE, LocalSystem, wait_until
from models.calendar import london_date
from tasks.holiday_cache import calendar_for
from tasks.prefect.resume import waiting_key
from tests.conftest import DSP_OPTIONS, EXAMPLE_REFERRAL
from tests.figures import record_figure
from tests.flows.canaries import (
    ReviewMarkers,
    answer_form,
    closed,
    observe_canaries,
    outbox_settled,
    review_steps,
    store_rows,
    through_the_dashboard,
)
from tests.flows.conftest import SystemFactory

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

MOVE_ON = 60.0 + STALL_ALLOWANCE


# -- what a user does and sees ---------------------------------------------------------------------------

def refer(system: LocalSystem, path: Path, *, by: str | None = None, **changes: Any) -> str:
    path.write_text(json.dumps(dict(EXAMPLE_REFERRAL, **changes)))
    return str(system.sbu_json("refer", str(path), *(("--by", by) if by else ()))["case_ref"])


def dsp_options(names: dict[str, str]) -> list[str]:
    """`--dsp-la NAME --dsp-health NAME --dsp-police NAME`, from the form's field names."""
    return [arg for role, name in names.items() for arg in (f"--{role.replace('_', '-')}", name)]


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


def answer(system: LocalSystem, run_name: str, key_prefix: str, run_input: dict[str, Any],
           recorded_by: str) -> UUID:
    """Submit a dashboard form as the Prefect UI does, once the run waits on it; then wait for the
    run to move past that key."""
    run_id, key = answer_form(system, run_name, key_prefix, {**run_input, "recorded_by": recorded_by},
                              timeout=MOVE_ON)

    def moved_on() -> bool:
        # Waiting on another key, or ended: not merely running, which it is while it records.
        now = system.run(run_id)
        waits_on = waiting_key(now)
        return (waits_on is not None and waits_on != key) or bool(now.state and now.state.is_final())

    wait_until(moved_on, timeout=MOVE_ON, what=f"{run_name} to take the answer and move on")
    return run_id


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

def mailed(system: LocalSystem, case_ref: str, *words: str, count: int = 1) -> list[EmailMessage]:
    """The case's messages whose subject has every one of `words`, once `count` of them are there:
    first queued in the outbox by whatever changed the case, then delivered by a `deliver-outbox`
    run of their own, each allowed its own time on a busy machine (so a slow delivery behind a
    backlog of background runs is told apart from mail never queued)."""
    def queued() -> bool:
        rows = store_rows(system, "SELECT subject FROM outbox WHERE case_ref = ?", case_ref)
        return len([subject for (subject,) in rows if all(word in subject for word in words)]) >= count

    def delivered() -> list[EmailMessage] | None:
        found = messages(system, case_ref, *words)
        return found if len(found) >= count else None

    what = f"{count} of {case_ref}'s {' '.join(words)!r} mail"
    wait_until(queued, timeout=MOVE_ON, what=f"{what} to be queued")
    return wait_until(delivered, timeout=MOVE_ON, what=f"{what} to be delivered")


def walk_forms(system: LocalSystem, path: Path, m: ReviewMarkers) -> str:
    """A second notified case, referred on Fri 15 Jan, walked from its decision to its last action
    closed on the dashboard's forms, each carrying its canary markers. Its meeting is moved and its
    outcome recorded with `sbu`, the two typed steps the main case takes on the dashboard: so each
    free-text field is typed through both doors."""
    children = [m(f"child-{n}", "LA-{}") for n in (1, 2)]
    path.write_text(json.dumps(dict(
        EXAMPLE_REFERRAL, external_ref=m("ext", "EXT-{}"), incident_date="2027-01-10",
        la_aware_date="2027-01-10", referred_at="2027-01-15T09:00:00+00:00", agencies_involved=["police"],
        children=[{"la_record_id": child, "age_years": 5, "looked_after": False, "care_leaver": False}
                  for child in children])))
    ref = str(system.sbu_json("refer", str(path), "--by", m.name("referred-by"))["case_ref"])
    through_the_dashboard(system, ref, review_steps(m, "2027-01-15"), m, by_sbu=("meeting moved", "outcome"))
    return ref


# Every free-text field of both reviews carries a canary marker, so the walk ends by looking for them
# where they must not be: two cases through every form is long on a loaded 2-core machine, and the
# timeout is for such a machine, not a target.
@pytest.mark.timeout(1500)
def test_a_notified_case_runs_from_referral_to_publication_and_closes_with_its_last_action(
        local_system: SystemFactory, tmp_path: Path) -> None:
    since = datetime.now(UTC) - timedelta(seconds=5)
    token = f"zq{uuid4().hex[:10]}"  # z and q: never in a UUID or a hex digest
    m, by_forms = ReviewMarkers(token, "walk"), ReviewMarkers(token, "forms")
    # Case time starts at noon on Friday 15 January 2027 and runs an hour a second. The case was
    # referred, decided and notified on Monday 11 January, before `sbu serve` started.
    system = local_system(time_scale=3600, case_start=datetime(2027, 1, 15, 12, 0, tzinfo=UTC),
                          serving=False)
    ref = refer(system, tmp_path / "referral.json", external_ref=m("ext", "POL-{}"),
                incident_date="2027-01-10", la_aware_date="2027-01-10",
                referred_at="2027-01-11T09:00:00+00:00",
                agencies_involved=["police", "health", "education"],
                children=[{"la_record_id": m(f"child-{n}", "LA-{}"), "age_years": 6, "looked_after": False,
                           "care_leaver": False} for n in (1, 2)],
                by=m.name("referred-by"))
    dsps = {role: m.name(f"{role}-d") for role in ("dsp_la", "dsp_health", "dsp_police")}
    system.sbu("decide", ref, "--sin", "--rapid-review", "--rationale", m.text("decision-why"),
               *dsp_options(dsps), "--deputy", "police", "--on", "2027-01-11", "--by", m.name("decided-by"))
    record(system, ref, "sin-submission", "2027-01-11", "--national-ref", m("sin-ref", "CSIN-{}"),
           "--by", m.name("sin-by"))
    record(system, ref, "partners-informed", "2027-01-12", "--reference", m("partners-ref", "PI-{}"),
           "--by", m.name("partners-by"))
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
    record(system, ref, "rr-agency-responses", "2027-01-14", "--agency", "police",
           "--by", m.name("police-by"))
    answer(system, review, "rr-meeting-", {"record": {"rr_agency_responses__agency": "Health (ICB)",
                                                      "rr_agency_responses__completed_on": "2027-01-15"}},
           m.name("health-by"))
    # The meeting moved on the dashboard to Tuesday 19 January at 14:00: everyone gets an update.
    place = m("meeting-place", "Civic Centre {}")
    answer(system, review, "rr-meeting-", {"record": {
        "rr_meeting_moved__meeting_on": "2027-01-19", "rr_meeting_moved__start_time": "14:00",
        "rr_meeting_moved__place": place, "rr_meeting_moved__reason": m.text("meeting-moved-why")}},
        m.name("moved-by"))
    [update] = mailed(system, ref, "Rapid Review meeting moved")
    [first] = messages(system, ref, "Rapid Review meeting:")
    original, moved = invitation(first), invitation(update)
    assert str(moved["UID"]) == str(original["UID"])
    assert (int(original["SEQUENCE"]), int(moved["SEQUENCE"])) == (0, 1)
    assert original.decoded("DTSTART").isoformat() == "2027-01-21T10:00:00+00:00"
    assert moved.decoded("DTSTART").isoformat() == "2027-01-19T14:00:00+00:00"
    assert str(moved["LOCATION"]) == place
    assert items(system, ref)["rr-meeting"]["due"] == "2027-01-19"

    # Meanwhile a second case goes through every form on the dashboard, while this one waits for
    # its days to come.
    pool = ThreadPoolExecutor(max_workers=1)
    forms = pool.submit(walk_forms, system, tmp_path / "forms.json", by_forms)
    try:
        walk_on(system, ref, review, m)
        forms_ref = forms.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    for case_ref in (ref, forms_ref):
        wait_until(partial(closed, system, case_ref), timeout=MOVE_ON, what=f"{case_ref} to close")
    wait_until(lambda: outbox_settled(system), timeout=MOVE_ON, what="the outbox to deliver")
    found = observe_canaries(system, since=since, token=token, cases={ref: m, forms_ref: by_forms},
                             forms_case=forms_ref)
    record_figure(**found.figure())  # before the assertions: a loss shows in the figures too
    found.assert_none_lost()


def walk_on(system: LocalSystem, ref: str, review: str, m: ReviewMarkers) -> None:
    """The notified case from the education's silence to its last action closed."""
    # Education's information is chased: overdue after Monday, escalated to the DSPs on Tuesday.
    wait_until(lambda: messages(system, ref, "ESCALATION", "(education)"), timeout=240,
               what="education's escalation")
    assert messages(system, ref, "OVERDUE", "(education)")
    assert not messages(system, ref, "OVERDUE", "(police)")
    # The meeting goes ahead without it; its outcome is due the next working day.
    record(system, ref, "rr-meeting", "2027-01-19", "--reference", m("minutes-ref", "MIN-{}"),
           "--by", m.name("meeting-by"))
    meeting = items(system, ref)["rr-meeting"]
    assert meeting["details"]["held_without"] == ["education"]
    assert items(system, ref)["rr-outcome"]["due"] == "2027-01-20"
    # The outcome, signed off by the three DSP roles on the dashboard, recommends a local CSPR.
    answer(system, review, "rr-outcome-", {"record": {
        "rr_outcome__immediate_actions": m.text("immediate"),
        "rr_outcome__learning": m.text("learning"),
        "rr_outcome__recommendation": "A local CSPR",
        "rr_outcome__rationale": m.text("outcome-why"),
        **{f"rr_outcome__{role}": {"name": m.name(f"{role}-o")}
           for role in ("dsp_la", "dsp_health", "dsp_police")},
        "rr_outcome__decided_on": on(system, "2027-01-19")}}, m.name("outcome-by"))
    mailed(system, ref, "Child Safeguarding Practice Review commissioned")
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

    # From here every record is dated Wed 20 Jan, the day after the outcome: the due dates they set
    # are what is checked, and later days would only be waited for on the case clock.
    # Education's late information is still taken.
    record(system, ref, "rr-agency-responses", "2027-01-20", "--agency", "education",
           "--by", m.name("education-by"))
    late = items(system, ref)["rr-agency-responses:education"]
    assert (late["state"], late["completed_on"], late["due"]) == ("done", "2027-01-20", "2027-01-18")
    # The report to the Panel carries the outcome; the Panel agrees.
    record(system, ref, "rr-report-to-panel", "2027-01-20", "--reference", m("rr-report-ref", "NP-{}"),
           "--by", m.name("report-by"))
    assert items(system, ref)["rr-panel-response"]["due"] == "2027-02-10"  # 15 working days on
    record(system, ref, "rr-panel-response", "2027-01-20", "--response", "agree",
           "--reference", m("panel-ref", "PR-{}"), "--by", m.name("panel-by"))

    # The CSPR: reviewers, terms of reference, IMRs by the date the panel set (Fri 5 Feb).
    record(system, ref, "cspr-reviewer-appointed", "2027-01-20", "--reviewer", m.name("reviewer"),
           "--by", m.name("reviewer-by"))
    record(system, ref, "cspr-terms-of-reference", "2027-01-20", "--reference", m("tor-ref", "TOR-{}"),
           "--by", m.name("tor-by"))
    record(system, ref, "cspr-imr-requests", "2027-01-20", "--imrs-due", "2027-02-05",
           "--by", m.name("imr-requests-by"))
    assert {label: d for label, d in due(system, ref).items() if label.startswith("cspr-imr:")} == {
        "cspr-imr:police": "2027-02-05", "cspr-imr:health": "2027-02-05", "cspr-imr:education": "2027-02-05"}
    mailed(system, ref, "Individual Management Review requested", count=3)
    assert len(messages(system, ref, "Individual Management Review requested")) == 3
    record(system, ref, "cspr-imr", "2027-01-20", "--agency", "police", "--by", m.name("police-imr-by"))
    # Health's IMR arrives without its chronology and lessons learned: flagged, and chased for the
    # rest within 5 working days of the check (the case clock runs on meanwhile, so of whichever
    # day the check fell on).
    checked_from = today(system)
    answer(system, f"{ref} cspr", "cspr-evidence-", {"record": {
        "cspr_imr__agency": "Health (ICB)", "cspr_imr__completed_on": on(system, "2027-01-20"),
        "cspr_imr__missing_sections": ["Chronology", "Lessons learned"]}}, m.name("health-imr-by"))
    checked_by = today(system)
    health = items(system, ref)["cspr-imr:health"]
    calendar = calendar_for(system.settings())
    assert health["state"] == "open"
    assert calendar.add_working_days(checked_from, 5) <= date.fromisoformat(health["due"]) \
        <= calendar.add_working_days(checked_by, 5)
    assert health["details"]["sections"] == {
        "chronology": "missing", "analysis-of-key-decisions": "present", "missed-opportunities": "present",
        "good-practice": "present", "lessons-learned": "missing", "recommendations": "present"}
    mailed(system, ref, "from health incomplete: 2 sections missing")
    [chase] = messages(system, ref, "from health incomplete")
    body = chase.get_body(preferencelist=("plain",))
    assert body is not None
    assert "Chronology" in body.get_content()
    # The rest of the evidence and both reports arrive the same day.
    record(system, ref, "cspr-imr", "2027-01-20", "--agency", "health", "--by", m.name("health-rest-by"))
    record(system, ref, "cspr-imr", "2027-01-20", "--agency", "education", "--by", m.name("education-imr-by"))
    record(system, ref, "cspr-family-engagement", "2027-01-20", "--engagement", "declined",
           "--reason", m.text("family-why"), "--by", m.name("family-by"))
    record(system, ref, "cspr-draft-report", "2027-01-20", "--reference", m("draft-ref", "DR-{}"),
           "--by", m.name("draft-by"))
    record(system, ref, "cspr-final-report", "2027-01-20", "--reference", m("final-ref", "FR-{}"),
           "--by", m.name("final-by"))
    # Publication planned for Monday 1 March: the report goes to the Panel by the 7th working day
    # before it (26, 25, 24, 23, 22, 19, 18 Feb).
    system.sbu("retime", ref, "planned-publication", "--to", "2027-03-01",
               "--reason", m.text("publication-moved-why"), "--by", m.name("retime-by"))
    assert items(system, ref)["cspr-report-to-panel"]["due"] == "2027-02-18"
    record(system, ref, "cspr-report-to-panel", "2027-01-20", "--reference", m("cspr-report-ref", "SOS-{}"),
           "--by", m.name("cspr-report-by"))
    record(system, ref, "cspr-publication", "2027-01-20", "--reference", m("published-ref", "PUB-{}"),
           "--by", m.name("publication-by"))
    # 20 working days on: 21, 22, 25..29 Jan, 1..5, 8..12, 15..17 Feb.
    assert items(system, ref)["cspr-action-plan"]["due"] == "2027-02-17"

    # The action plan: one action from each review, each chased until closed with its evidence.
    nurse, inspector = m("owner-role-1", "Named Nurse {}"), m("owner-role-2", "Detective Inspector {}")
    system.sbu("action", "add", ref, "--source", "rapid-review", "--agency", "health",
               "--owner-role", nurse, "--summary", m.text("action-summary-1"),
               "--due", "2027-03-31", "--by", m.name("action-1-by"))
    system.sbu("action", "add", ref, "--source", "cspr", "--agency", "police",
               "--owner-role", inspector, "--summary", m.text("action-summary-2"),
               "--due", "2027-04-30", "--by", m.name("action-2-by"))
    assert {label: d for label, d in due(system, ref).items() if label.startswith("action:")} == {
        "action:a1": "2027-03-31", "action:a2": "2027-04-30"}
    system.wait_for_wait(f"{ref} action plan", "actions-", timeout=MOVE_ON)
    record(system, ref, "rr-action-plan", "2027-01-20", "--reference", m("rr-plan-ref", "AP-{}"),
           "--by", m.name("rr-plan-by"))
    record(system, ref, "cspr-action-plan", "2027-01-20", "--reference", m("cspr-plan-ref", "CAP-{}"),
           "--by", m.name("cspr-plan-by"))
    evidence = m("note-evidence", "AUD-{}")
    system.sbu("action", "note", ref, "a1", "--note", m.text("note"), "--evidence", evidence,
               "--by", m.name("note-by"))
    actions = {row["action"]: row for row in system.sbu_json("action", "list", ref)["actions"]}
    assert (actions["a1"]["owner_role"], actions["a1"]["notes"], actions["a1"]["evidence_ref"]) == (
        nurse, 1, evidence)
    # Closed today (the default): the actions were added on whichever day the running case clock
    # had reached, and an action cannot close before it was added.
    system.sbu("action", "close", ref, "a2", "--evidence", m("closed-evidence-2", "BRIEFING-{}"),
               "--by", m.name("close-2-by"))
    assert system.sbu_json("status", ref)["status"] == "in-progress"  # a1 is still open
    closed_now = system.sbu_json("action", "close", ref, "a1", "--evidence",
                                 m("closed-evidence-1", "AUD-{}-FINAL"), "--by", m.name("close-1-by"))
    assert closed_now["closed"] is True
    assert system.sbu_json("status", ref)["stage"] == "closed"
    mailed(system, ref, "Case closed")
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
