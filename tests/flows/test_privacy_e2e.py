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
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID, uuid4

import pytest

from deployments.local import STALL_ALLOWANCE, LocalSystem, wait_until
from tasks.prefect.resume import waiting_key
from tests.conftest import EXAMPLE_REFERRAL
from tests.figures import record_figure
from tests.flows.conftest import SystemFactory

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

CASE_START = datetime(2026, 12, 23, 12, 0, tzinfo=UTC)
DAY = "2026-12-23"  # the referral day, and "today" on the case clock
PAGE = 200  # the server's cap on list endpoints
EVENT_PAGE = 50  # and on the events endpoint

T = TypeVar("T")


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


# -- reading back everything Prefect holds ----------------------------------------------------------

@dataclass
class PrefectScan:
    """Everything the Prefect API returned, as (where, JSON text) pairs, lowercased for search."""

    entries: list[tuple[str, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, where: str, value: Any) -> None:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        self.entries.append((f"{kind}: {where}", text.lower()))
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def hits(self, needle: str) -> list[str]:
        needle = needle.lower()
        found = []
        for where, text in self.entries:
            at = text.find(needle)
            if at >= 0:
                found.append(f"{where}: ...{text[max(0, at - 80):at + len(needle) + 80]}...")
        return found

    def kinds_with(self, needle: str) -> set[str]:
        return {hit.split(":", 1)[0] for hit in self.hits(needle)}


def _paged(fetch: Callable[[int], list[T]]) -> Iterable[T]:
    offset = 0
    while True:
        batch = fetch(offset)
        yield from batch
        if len(batch) < PAGE:
            return
        offset += PAGE


def scan_prefect(client: SyncPrefectClient, *, events_since: datetime) -> PrefectScan:
    scan = PrefectScan()
    for flow in _paged(lambda o: client.read_flows(limit=PAGE, offset=o)):
        scan.add("flow", flow.name, flow.model_dump(mode="json"))
    for run in _paged(lambda o: client.read_flow_runs(limit=PAGE, offset=o)):
        # The whole run: name, parameters, tags, labels, context, state (name, message, details).
        scan.add("flow run", f"{run.name} {run.id}", run.model_dump(mode="json"))
        for state in client.read_flow_run_states(run.id):
            scan.add("flow run state", f"{run.name} {state.name}", state.model_dump(mode="json"))
        for item in client.filter_flow_run_input(run.id, key_prefix="", limit=PAGE, exclude_keys=set()):
            scan.add("run input", f"{run.name} {item.key}", {"key": item.key, "value": item.value})
    for task_run in _paged(lambda o: client.read_task_runs(limit=PAGE, offset=o)):
        scan.add("task run", task_run.name, task_run.model_dump(mode="json"))
    for log in _paged(lambda o: client.read_logs(limit=PAGE, offset=o)):
        scan.add("log", f"flow run {log.flow_run_id} task run {log.task_run_id}", log.model_dump(mode="json"))
    for artifact in _paged(lambda o: client.read_artifacts(limit=PAGE, offset=o)):
        scan.add("artifact", f"{artifact.key} {artifact.flow_run_id}", artifact.model_dump(mode="json"))
    for deployment in _paged(lambda o: client.read_deployments(limit=PAGE, offset=o)):
        # Description, parameters, parameter_openapi_schema (with defaults), tags, job variables.
        scan.add("deployment", deployment.name, deployment.model_dump(mode="json"))
    for variable in client.read_variables():
        scan.add("variable", variable.name, variable.model_dump(mode="json"))
    for automation in client.read_automations():
        scan.add("automation", automation.name, automation.model_dump(mode="json"))
    for block in client.read_block_documents(include_secrets=True):
        scan.add("block document", str(block.name), block.model_dump(mode="json"))
    for event in _events(client, since=events_since):
        scan.add("event", str(event.get("event")), event)
    return scan


def _events(client: SyncPrefectClient, *, since: datetime) -> Iterable[dict[str, Any]]:
    """The event feed the dashboard shows (no typed reader on the client: its own HTTP door)."""
    response = client.request("POST", "/events/filter", json={
        "filter": {"occurred": {"since": since.isoformat(),
                                "until": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()}},
        "limit": EVENT_PAGE})
    response.raise_for_status()
    page: dict[str, Any] = response.json()
    while True:
        yield from page["events"]
        if not page.get("next_page"):
            return
        response = client._client.get(page["next_page"])  # an absolute URL from the server
        response.raise_for_status()
        page = response.json()


# -- the other places a marker must not reach, and the one it must ------------------------------------

def email_texts(system: LocalSystem) -> list[tuple[str, str]]:
    """Each message the SMTP server took: its raw bytes, and every part decoded (so a marker in a
    base64 or quoted-printable body is seen too)."""
    assert system.sink is not None
    texts = []
    for received in system.sink.messages:
        raw = received.content.decode("utf-8", errors="replace")
        parsed = message_from_bytes(received.content, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        decoded = [str(part.get_content()) for part in parsed.walk()
                   if part.get_content_maintype() == "text"]
        headers = "\n".join(f"{k}: {v}" for k, v in parsed.items())
        texts.append((received.subject, "\n".join([raw, headers, *decoded]).lower()))
    return texts


def store_rows(system: LocalSystem, query: str, *params: Any) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(f"file:{system.data_dir / 'sbu.db'}?mode=ro", uri=True)
    try:
        return list(connection.execute(query, params).fetchall())
    finally:
        connection.close()


def outbox_settled(system: LocalSystem) -> bool:
    return not store_rows(system, "SELECT id FROM outbox WHERE status = 'pending'")


def resume(system: LocalSystem, run_id: UUID, run_input: dict[str, Any]) -> None:
    """What the Prefect UI does when a form is submitted."""
    with system.client() as client:
        result = client.resume_flow_run(run_id, run_input=run_input)
    assert result.status.value == "ACCEPT", result.details


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


# -- the review processes ----------------------------------------------------------

REVIEW_START = datetime(2027, 1, 11, 12, 0, tzinfo=UTC)  # a Monday; every record is dated that day
REVIEW_DAY = "2027-01-11"


@dataclass(frozen=True)
class Step:
    """One thing typed into a case, as the dashboard's form takes it and as `sbu` does: which run
    asks for it (its name after the case reference) and on what key, the form's answer, and the
    command. `typed` names each marker the step carries, by field."""

    label: str
    run: str
    key: str
    form: dict[str, Any]
    command: list[str]


class ReviewMarkers:
    """A marker for every free-text field of the reviews, for one case (`cli` or `ui`)."""

    def __init__(self, token: str, case: str) -> None:
        self.token, self.case = token, case
        self.typed: dict[str, str] = {}

    def __call__(self, field_name: str, shape: str = "{}") -> str:
        value = shape.format(f"{self.token}{self.case}{field_name}")
        self.typed[field_name] = value
        return value

    def name(self, field_name: str) -> str:
        return self(field_name, "Canary Person {}")

    def text(self, field_name: str) -> str:
        return self(field_name, "Canary text {}: what a person typed here.")


# The action added below, as the dashboard's forms offer it (by number, agency and due date).
ACTION_A1 = "A1: Police, due 31 Mar 2027"


def review_steps(m: ReviewMarkers) -> list[Step]:
    """The case from referral to its action closed, every free-text field carrying a marker."""
    day = REVIEW_DAY
    signed = {role: m.name(f"{role}-o") for role in ("dsp_la", "dsp_health", "dsp_police")}
    decision_dsps = {role: m.name(f"{role}-d") for role in ("dsp_la", "dsp_health", "dsp_police")}
    decision_rationale = m.text("decision-why")

    def dsp_options(names: dict[str, str]) -> list[str]:
        return [arg for role, name in names.items() for arg in (f"--{role.replace('_', '-')}", name)]

    steps = [
        Step("dsp-decision", "", "dsp-decision",
             {"sin": "yes", "rapid_review": "yes", "rationale": decision_rationale,
              **{role: {"name": name, "deputy": False} for role, name in decision_dsps.items()},
              "decided_on": day},
             ["decide", "{case}", "--sin", "--rapid-review", "--rationale", decision_rationale,
              *dsp_options(decision_dsps), "--on", day]),
    ]
    national_ref = m("sin-ref", "CSIN-{}")
    partners_ref = m("partners-ref", "PI-{}")
    moved_place, moved_reason = m("meeting-place", "Civic Centre {}"), m.text("meeting-moved-why")
    minutes_ref = m("minutes-ref", "MIN-{}")
    actions_now, learning, outcome_why = m.text("immediate"), m.text("learning"), m.text("outcome-why")
    report_ref, panel_ref = m("rr-report-ref", "NP-{}"), m("panel-ref", "PR-{}")
    rr_plan_ref = m("rr-plan-ref", "AP-{}")
    owner_role, summary = m("owner-role", "Named Nurse {}"), m.text("action-summary")
    reviewer = m.name("reviewer")
    tor_ref, family_why = m("tor-ref", "TOR-{}"), m.text("family-why")
    draft_ref, final_ref = m("draft-ref", "DR-{}"), m("final-ref", "FR-{}")
    publication_why, cspr_report_ref = m.text("publication-moved-why"), m("cspr-report-ref", "SOS-{}")
    published_ref, cspr_plan_ref = m("published-ref", "PUB-{}"), m("cspr-plan-ref", "CAP-{}")
    note, note_evidence, closed_evidence = m.text("note"), m("note-evidence", "EV-{}"), m("closed-evidence",
                                                                                           "EVC-{}")
    rr, cspr = " rapid review", " cspr"
    steps += [
        Step("sin-submission", "", "notification-",
             {"record": {"sin_submission__national_ref": national_ref, "sin_submission__completed_on": day}},
             ["record", "{case}", "sin-submission", "--national-ref", national_ref, "--on", day]),
        Step("partners-informed", "", "notification-",
             {"record": {"partners_informed__completed_on": day,
                         "partners_informed__reference": partners_ref}},
             ["record", "{case}", "partners-informed", "--reference", partners_ref, "--on", day]),
        Step("agency response", rr, "rr-meeting-",
             {"record": {"rr_agency_responses__agency": "police", "rr_agency_responses__completed_on": day}},
             ["record", "{case}", "rr-agency-responses", "--agency", "police", "--on", day]),
        Step("meeting moved", rr, "rr-meeting-",
             {"record": {"rr_meeting_moved__meeting_on": "2027-01-13",
                         "rr_meeting_moved__start_time": "14:00",
                         "rr_meeting_moved__place": moved_place, "rr_meeting_moved__reason": moved_reason}},
             ["meeting", "{case}", "--on", "2027-01-13", "--at", "14:00", "--place", moved_place,
              "--reason", moved_reason]),
        Step("meeting held", rr, "rr-meeting-",
             {"record": {"rr_meeting__completed_on": day, "rr_meeting__reference": minutes_ref}},
             ["record", "{case}", "rr-meeting", "--reference", minutes_ref, "--on", day]),
        Step("outcome", rr, "rr-outcome-",
             {"record": {"rr_outcome__immediate_actions": actions_now, "rr_outcome__learning": learning,
                         "rr_outcome__recommendation": "A local CSPR", "rr_outcome__rationale": outcome_why,
                         **{f"rr_outcome__{role}": {"name": name, "deputy": False}
                            for role, name in signed.items()},
                         "rr_outcome__decided_on": day}},
             ["record", "{case}", "rr-outcome", "--immediate-actions", actions_now, "--learning", learning,
              "--recommendation", "local-cspr", "--rationale", outcome_why, *dsp_options(signed),
              "--on", day]),
        Step("rr report to panel", rr, "rr-panel-and-plan-",
             {"record": {"rr_report_to_panel__completed_on": day,
                         "rr_report_to_panel__reference": report_ref}},
             ["record", "{case}", "rr-report-to-panel", "--reference", report_ref, "--on", day]),
        Step("panel response", rr, "rr-panel-and-plan-",
             {"record": {"rr_panel_response__response": "Agrees with the recommendation",
                         "rr_panel_response__completed_on": day, "rr_panel_response__reference": panel_ref}},
             ["record", "{case}", "rr-panel-response", "--response", "agree", "--reference", panel_ref,
              "--on", day]),
        Step("action added", rr, "rr-panel-and-plan-",
             {"record": {"action_added__source": "The Rapid Review", "action_added__agency": "Police",
                         "action_added__owner_role": owner_role, "action_added__summary": summary,
                         "action_added__due": "2027-03-31"}},
             ["action", "add", "{case}", "--source", "rapid-review", "--agency", "police",
              "--owner-role", owner_role, "--summary", summary, "--due", "2027-03-31"]),
        Step("rr action plan", rr, "rr-panel-and-plan-",
             {"record": {"rr_action_plan__completed_on": day, "rr_action_plan__reference": rr_plan_ref}},
             ["record", "{case}", "rr-action-plan", "--reference", rr_plan_ref, "--on", day]),
        Step("reviewer", cspr, "cspr-setup-",
             {"record": {"cspr_reviewer_appointed__reviewers": [reviewer],
                         "cspr_reviewer_appointed__completed_on": day}},
             ["record", "{case}", "cspr-reviewer-appointed", "--reviewer", reviewer, "--on", day]),
        Step("terms of reference", cspr, "cspr-setup-",
             {"record": {"cspr_terms_of_reference__completed_on": day,
                         "cspr_terms_of_reference__reference": tor_ref}},
             ["record", "{case}", "cspr-terms-of-reference", "--reference", tor_ref, "--on", day]),
        Step("imr requests", cspr, "cspr-setup-",
             {"record": {"cspr_imr_requests__completed_on": day,
                         "cspr_imr_requests__imrs_due": "2027-02-05"}},
             ["record", "{case}", "cspr-imr-requests", "--imrs-due", "2027-02-05", "--on", day]),
        Step("family engagement", cspr, "cspr-evidence-",
             {"record": {"cspr_family_engagement__engagement": "Declined",
                         "cspr_family_engagement__reason": family_why,
                         "cspr_family_engagement__completed_on": day}},
             ["record", "{case}", "cspr-family-engagement", "--engagement", "declined",
              "--reason", family_why, "--on", day]),
        Step("imr", cspr, "cspr-evidence-",
             {"record": {"cspr_imr__agency": "police", "cspr_imr__completed_on": day,
                         "cspr_imr__missing_sections": []}},
             ["record", "{case}", "cspr-imr", "--agency", "police", "--on", day]),
        Step("draft report", cspr, "cspr-evidence-",
             {"record": {"cspr_draft_report__completed_on": day, "cspr_draft_report__reference": draft_ref}},
             ["record", "{case}", "cspr-draft-report", "--reference", draft_ref, "--on", day]),
        Step("final report", cspr, "cspr-report-",
             {"record": {"cspr_final_report__completed_on": day, "cspr_final_report__reference": final_ref}},
             ["record", "{case}", "cspr-final-report", "--reference", final_ref, "--on", day]),
        Step("publication moved", cspr, "cspr-report-",
             {"record": {"cspr_publication_moved__planned_on": "2027-03-01",
                         "cspr_publication_moved__reason": publication_why}},
             ["retime", "{case}", "planned-publication", "--to", "2027-03-01", "--reason", publication_why]),
        Step("cspr report to panel", cspr, "cspr-report-",
             {"record": {"cspr_report_to_panel__completed_on": day,
                         "cspr_report_to_panel__reference": cspr_report_ref}},
             ["record", "{case}", "cspr-report-to-panel", "--reference", cspr_report_ref, "--on", day]),
        Step("publication", cspr, "cspr-report-",
             {"record": {"cspr_publication__completed_on": day,
                         "cspr_publication__reference": published_ref}},
             ["record", "{case}", "cspr-publication", "--reference", published_ref, "--on", day]),
        Step("cspr action plan", cspr, "cspr-action-plan-",
             {"record": {"cspr_action_plan__completed_on": day,
                         "cspr_action_plan__reference": cspr_plan_ref}},
             ["record", "{case}", "cspr-action-plan", "--reference", cspr_plan_ref, "--on", day]),
        Step("progress note", " action plan", "actions-",
             {"record": {"action_progress__action": ACTION_A1, "action_progress__note": note,
                         "action_progress__evidence_ref": note_evidence, "action_progress__noted_on": day}},
             ["action", "note", "{case}", "a1", "--note", note, "--evidence", note_evidence, "--on", day]),
        Step("action closed", " action plan", "actions-",
             {"record": {"action__action": ACTION_A1, "action__evidence_ref": closed_evidence,
                         "action__completed_on": day}},
             ["action", "close", "{case}", "a1", "--evidence", closed_evidence, "--on", day]),
    ]
    return steps


def through_sbu(system: LocalSystem, case_ref: str, steps: list[Step], m: ReviewMarkers) -> None:
    for n, step in enumerate(steps):
        through_sbu_one(system, case_ref, n, step, m)


def through_sbu_one(system: LocalSystem, case_ref: str, n: int, step: Step, m: ReviewMarkers) -> None:
    args = [case_ref if arg == "{case}" else arg for arg in step.command]
    system.sbu(*args, "--by", m.name(f"by-{n}"))


# Once the Rapid Review's outcome commissions the CSPR, the CSPR's forms and the Rapid Review's
# (then the action plan's) are open at once: answered side by side, as two people would.
REVIEW_BRANCHES = (("rr report to panel", "panel response", "action added", "rr action plan",
                    "progress note", "action closed"),
                   ("reviewer", "terms of reference", "imr requests", "family engagement", "imr",
                    "draft report", "final report", "publication moved", "cspr report to panel",
                    "publication", "cspr action plan"))


def through_the_dashboard(system: LocalSystem, case_ref: str, steps: list[Step], m: ReviewMarkers) -> None:
    numbered = list(enumerate(steps))
    branched = {label for branch in REVIEW_BRANCHES for label in branch}
    answer_forms(system, case_ref, [(n, step) for n, step in numbered if step.label not in branched], m)
    in_threads([partial(answer_forms, system, case_ref, [(n, step) for n, step in numbered
                                                         if step.label in branch], m)
                for branch in REVIEW_BRANCHES])


def in_threads(calls: list[Callable[[], None]]) -> None:
    failures: list[BaseException] = []

    def drive(call: Callable[[], None]) -> None:
        try:
            call()
        except BaseException as error:  # noqa: BLE001 - raised below
            failures.append(error)

    threads = [threading.Thread(target=drive, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


# Steps with nothing typed but the recorder's name (an agency's information, an IMR arrived): on
# the dashboard's case too they go through `sbu`, which saves two of the slowest round trips.
NOTHING_TYPED = ("agency response", "imr")


def answer_forms(system: LocalSystem, case_ref: str, steps: list[tuple[int, Step]], m: ReviewMarkers) -> None:
    for n, step in steps:
        if step.label in NOTHING_TYPED:
            through_sbu_one(system, case_ref, n, step, m)
            continue
        name = f"{case_ref}{step.run}"
        run = system.wait_for_wait(name, step.key, timeout=60 + STALL_ALLOWANCE)
        key = waiting_key(run)
        resume(system, run.id, {**step.form, "recorded_by": m.name(f"by-{n}")})

        def moved(run_id: UUID = run.id, before: str | None = key) -> bool:
            now = system.run(run_id)
            return waiting_key(now) not in (None, before) or (
                now.state_type is not None and now.state_type.value == "COMPLETED")

        try:
            wait_until(moved, timeout=60 + STALL_ALLOWANCE, what=f"{name} to take {step.label}", interval=0.5)
        except TimeoutError:
            pytest.fail(f"{step.label} answered on the dashboard was not taken; the run is "
                        f"{system.run(run.id).state}")
        now = waiting_key(system.run(run.id))
        if now is not None:
            with system.client() as client:
                description = client.read_flow_run_input(run.id, f"suspended-{now}-description")
            assert "was not recorded" not in str(description), (step.label, description)


def closed(system: LocalSystem, case_ref: str) -> bool:
    return bool(system.ask("status", case_ref)["status"] == "closed")


def store_text(system: LocalSystem) -> str:
    """Every row of every table of the case store, as text."""
    tables = [row[0] for row in store_rows(system, "SELECT name FROM sqlite_master WHERE type = 'table'")]
    return "\n".join(json.dumps(row, default=str) for table in tables
                     for row in store_rows(system, f'SELECT * FROM "{table}"')).lower()


# Two cases through every form of the reviews: on a shared 2-core machine (load average 30) this
# took over the default 10 minutes; the timeout is for such a machine, not a target.
@pytest.mark.timeout(1500)
def test_canaries_typed_into_the_reviews_stay_in_the_case_store(local_system: SystemFactory,
                                                                 tmp_path: Path) -> None:
    test_started = datetime.now(UTC) - timedelta(seconds=5)
    token = f"zq{uuid4().hex[:10]}"
    by_cli, by_ui = ReviewMarkers(token, "cli"), ReviewMarkers(token, "ui")
    system = local_system(case_start=REVIEW_START)
    refs = {}
    for side, m in (("cli", by_cli), ("ui", by_ui)):
        children = [m(f"child-{n}", "LA-{}") for n in (1, 2)]
        (tmp_path / f"{side}.json").write_text(json.dumps(dict(
            EXAMPLE_REFERRAL, external_ref=m("ext", "EXT-{}"), incident_date="2027-01-10",
            la_aware_date="2027-01-10", referred_at="2027-01-11T09:00:00+00:00", agencies_involved=["police"],
            children=[{"la_record_id": child, "age_years": 5, "looked_after": False, "care_leaver": False}
                      for child in children])))
        refs[side] = str(system.sbu_json("refer", str(tmp_path / f"{side}.json"), "--by",
                                         m.name("referred-by"))["case_ref"])
    cli_steps, ui_steps = review_steps(by_cli), review_steps(by_ui)
    # The two cases at once: one typed in with `sbu`, one on the dashboard's forms.
    began = time.monotonic()
    in_threads([partial(through_sbu, system, refs["cli"], cli_steps, by_cli),
                partial(through_the_dashboard, system, refs["ui"], ui_steps, by_ui)])
    driven = time.monotonic() - began
    for ref in refs.values():
        wait_until(partial(closed, system, ref), timeout=60 + STALL_ALLOWANCE, what=f"{ref} to close")
    wait_until(lambda: outbox_settled(system), timeout=60 + STALL_ALLOWANCE, what="the outbox to deliver")

    # Positive control: every marker is in the case store, the dashboard's included (so what was
    # typed on a form was moved there).
    stored = store_text(system)
    typed = {f"{side} {field}": value for side, m in (("cli", by_cli), ("ui", by_ui))
             for field, value in m.typed.items()}
    missing = {where: value for where, value in typed.items() if value.lower() not in stored}
    assert not missing, f"typed but not in the case store: {missing}"

    with system.client() as client:
        scan = scan_prefect(client, events_since=test_started)
    for ref in refs.values():
        for run in ("", " rapid review", " cspr", " action plan"):
            assert "flow run" in scan.kinds_with(f"{ref}{run}"), (ref, run, scan.counts)
    # (Every form is answered, so no run input is left to read; the test above shows the scan
    # reads them.) It read what the runs wrote meanwhile.
    assert min(scan.counts.get(kind, 0) for kind in ("flow run state", "task run", "log", "event")) > 0
    # Every answer typed on a form is gone from Prefect once read (docs/architecture.md, "Data
    # protection"): no run of the dashboard's case keeps a response.
    with system.client() as client:
        left = [f"{run.name}: {item.key}" for suffix in ("", " rapid review", " cspr", " action plan")
                for run in system.runs_named(f"{refs['ui']}{suffix}")
                for item in client.filter_flow_run_input(run.id, key_prefix="", limit=PAGE,
                                                         exclude_keys=set())
                if item.key.endswith("-response")]
    assert left == []

    leaks = scan.hits(token)
    # Unfolded, as a mail client reads them: an invitation's lines are folded, and quoted-printable
    # bodies are broken by soft line breaks, either of which can cut a value in two.
    emails = [(subject, text.replace("=\r\n", "").replace("=\n", "").replace("\r\n ", "").replace("\n ", ""))
              for subject, text in email_texts(system)]
    assert any(refs["ui"].lower() in text for _, text in emails)
    # The meeting's place is the one typed value meant for email: the invitation tells everyone
    # where to go. Everything else stays in the store.
    mailed = [f"{subject}: {value}" for subject, text in emails for where, value in typed.items()
              if value.lower() in text and not where.endswith("meeting-place")]
    mailed += [f"{subject}: a marker" for subject, text in emails
               if token in text.replace(by_cli.typed["meeting-place"].lower(), "")
               .replace(by_ui.typed["meeting-place"].lower(), "")]
    logs = [path for path in system.data_dir.rglob("*.log")
            if token in path.read_text(errors="replace").lower()]
    record_figure(kind="input", what="canary values typed into every free-text field of the reviews "
                                     "(sbu and dashboard forms), looked for in Prefect, logs and email",
                  tried=len(typed), lost=len(leaks) + len(mailed) + len(logs) + len(missing),
                  prefect_objects_read=sum(scan.counts.values()), emails_read=len(emails))
    print(f"\n{len(typed)} values typed into {len(cli_steps)} forms on each side in {driven:.0f} s; read "
          f"{sum(scan.counts.values())} Prefect objects and {len(emails)} emails")
    assert not leaks, f"{len(leaks)} marker(s) in Prefect (read {scan.counts}):\n" + "\n".join(leaks[:40])
    assert not mailed, f"markers in email: {sorted(set(mailed))[:40]}"
    assert not logs, f"markers in the application logs: {logs}"
