"""Canary markers: a distinct marker typed into every free-text field of a case, through `sbu` or
the dashboard's forms, and the observers that look for them where they must not be (every object
the Prefect API holds, the application's logs, email) and where they must (the case store).

A marker holds a token with letters no UUID or hex digest has, so a search for the token finds any
marker, whole or cut.
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
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

import pytest

from deployments.local import STALL_ALLOWANCE, LocalSystem, wait_until
from models.calendar import london_date
from tasks.prefect.resume import waiting_key

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

PAGE = 200  # the server's cap on list endpoints
EVENT_PAGE = 50  # and on the events endpoint

T = TypeVar("T")


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


def answer_form(system: LocalSystem, name: str, key_prefix: str, run_input: dict[str, Any], *,
                timeout: float = 60.0 + STALL_ALLOWANCE) -> tuple[UUID, str | None]:
    """Submit a form as the Prefect UI does, once the run called `name` waits on a key starting
    with `key_prefix`; the run's id and the key answered. A run seen waiting just before it takes a
    step recorded with `sbu` leaves that key, and its form with it, before the answer arrives, and
    refuses it ("Run input schema not found"): as a person reloading the page would, the answer is
    sent again to the form the run then waits on. A refusal by a run still waiting on the key fails."""
    deadline = time.monotonic() + timeout
    while True:
        run = system.wait_for_wait(name, key_prefix, timeout=max(1.0, deadline - time.monotonic()))
        key = waiting_key(run)
        with system.client() as client:
            result = client.resume_flow_run(run.id, run_input=run_input)
        if result.status.value == "ACCEPT":
            return run.id, key
        assert waiting_key(system.run(run.id)) != key, result.details
        assert time.monotonic() < deadline, result.details


# -- the review processes ----------------------------------------------------------

# The day the forms' case moves its meeting to: after anything the case clock reaches in a test.
MEETING_MOVED_TO = "2027-03-01"
# Stands for the day the case clock has reached as a step is taken: an action's note and closing,
# which can be dated no earlier than the day the action was added, on a clock that runs on.
TODAY = "{today}"


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


def review_steps(m: ReviewMarkers, day: str) -> list[Step]:
    """The case from its decision to its action closed, every free-text field carrying a marker;
    every record dated `day`."""
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
             {"record": {"rr_meeting_moved__meeting_on": MEETING_MOVED_TO,
                         "rr_meeting_moved__start_time": "14:00",
                         "rr_meeting_moved__place": moved_place, "rr_meeting_moved__reason": moved_reason}},
             ["meeting", "{case}", "--on", MEETING_MOVED_TO, "--at", "14:00", "--place", moved_place,
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
                         "action_progress__evidence_ref": note_evidence, "action_progress__noted_on": TODAY}},
             ["action", "note", "{case}", "a1", "--note", note, "--evidence", note_evidence, "--on", TODAY]),
        Step("action closed", " action plan", "actions-",
             {"record": {"action__action": ACTION_A1, "action__evidence_ref": closed_evidence,
                         "action__completed_on": TODAY}},
             ["action", "close", "{case}", "a1", "--evidence", closed_evidence, "--on", TODAY]),
    ]
    return steps


def on_the_day(value: Any, system: LocalSystem) -> Any:
    """`value` with TODAY, wherever it stands, as the day the case clock has reached."""
    if value == TODAY:
        return london_date(system.settings().clock().now()).isoformat()
    if isinstance(value, dict):
        return {key: on_the_day(item, system) for key, item in value.items()}
    return value


def through_sbu_one(system: LocalSystem, case_ref: str, n: int, step: Step, m: ReviewMarkers) -> None:
    args = [case_ref if arg == "{case}" else on_the_day(arg, system) for arg in step.command]
    system.sbu(*args, "--by", m.name(f"by-{n}"))


# Once the Rapid Review's outcome commissions the CSPR, the CSPR's forms and the Rapid Review's
# (then the action plan's) are open at once: answered side by side, as two people would.
REVIEW_BRANCHES = (("rr report to panel", "panel response", "action added", "rr action plan",
                    "progress note", "action closed"),
                   ("reviewer", "terms of reference", "imr requests", "family engagement", "imr",
                    "draft report", "final report", "publication moved", "cspr report to panel",
                    "publication", "cspr action plan"))


def through_the_dashboard(system: LocalSystem, case_ref: str, steps: list[Step], m: ReviewMarkers, *,
                          by_sbu: tuple[str, ...] = ()) -> None:
    """Every step on its form, as the Prefect UI sends it, but those labelled in `by_sbu`."""
    numbered = list(enumerate(steps))
    branched = {label for branch in REVIEW_BRANCHES for label in branch}
    answer_forms(system, case_ref, [(n, step) for n, step in numbered if step.label not in branched], m,
                 by_sbu=by_sbu)
    in_threads([partial(answer_forms, system, case_ref, [(n, step) for n, step in numbered
                                                         if step.label in branch], m, by_sbu=by_sbu)
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


def answer_forms(system: LocalSystem, case_ref: str, steps: list[tuple[int, Step]], m: ReviewMarkers, *,
                 by_sbu: tuple[str, ...] = ()) -> None:
    for n, step in steps:
        if step.label in NOTHING_TYPED or step.label in by_sbu:
            through_sbu_one(system, case_ref, n, step, m)
            continue
        name = f"{case_ref}{step.run}"
        run_id, key = answer_form(system, name, step.key,
                                  {**on_the_day(step.form, system), "recorded_by": m.name(f"by-{n}")})

        def moved(run_id: UUID = run_id, before: str | None = key) -> bool:
            now = system.run(run_id)
            return waiting_key(now) not in (None, before) or (
                now.state_type is not None and now.state_type.value == "COMPLETED")

        try:
            wait_until(moved, timeout=60 + STALL_ALLOWANCE, what=f"{name} to take {step.label}", interval=0.5)
        except TimeoutError:
            pytest.fail(f"{step.label} answered on the dashboard was not taken; the run is "
                        f"{system.run(run_id).state}")
        now = waiting_key(system.run(run_id))
        if now is not None:
            with system.client() as client:
                description = client.read_flow_run_input(run_id, f"suspended-{now}-description")
            assert "was not recorded" not in str(description), (step.label, description)


def closed(system: LocalSystem, case_ref: str) -> bool:
    return bool(system.ask("status", case_ref)["status"] == "closed")


def store_text(system: LocalSystem) -> str:
    """Every row of every table of the case store, as text."""
    tables = [row[0] for row in store_rows(system, "SELECT name FROM sqlite_master WHERE type = 'table'")]
    return "\n".join(json.dumps(row, default=str) for table in tables
                     for row in store_rows(system, f'SELECT * FROM "{table}"')).lower()


# The runs a case of the reviews has by the end: its own, then one per review and its action plan.
CASE_RUNS = ("", " rapid review", " cspr", " action plan")


@dataclass
class CanaryFindings:
    """What `observe_canaries` read and where it found a marker it must not."""

    typed: int
    prefect_objects_read: int
    emails_read: int
    prefect: list[str]
    mailed: list[str]
    logs: list[str]
    counts: dict[str, int]

    def figure(self) -> dict[str, Any]:
        """The reliability figure's row (tests/figures.py)."""
        return {"kind": "input", "what": "canary values typed into every free-text field of the reviews "
                                         "(sbu and dashboard forms), looked for in Prefect, logs and email",
                "tried": self.typed, "lost": len(self.prefect) + len(self.mailed) + len(self.logs),
                "prefect_objects_read": self.prefect_objects_read, "emails_read": self.emails_read}

    def assert_none_lost(self) -> None:
        assert not self.prefect, (f"{len(self.prefect)} marker(s) in Prefect (read {self.counts}):\n"
                                  + "\n".join(self.prefect[:40]))
        assert not self.mailed, f"markers in email: {sorted(set(self.mailed))[:40]}"
        assert not self.logs, f"markers in the application logs: {self.logs}"


def observe_canaries(system: LocalSystem, *, since: datetime, token: str, cases: dict[str, ReviewMarkers],
                     forms_case: str) -> CanaryFindings:
    """Once every case in `cases` (case reference: its markers) has closed and the outbox has
    delivered: every marker is in the case store, and no run of any case keeps a form's answer
    (asserted here); and where a marker is found that must not be (returned, for the test to record
    its figure before asserting none): any object the Prefect API holds, the application's logs or
    email, bar the one typed value meant for email (each meeting's place, in its invitation).
    `forms_case` is the case walked on the dashboard's forms, whose email is the positive control
    on reading the mail."""
    # Positive control: every marker is in the case store, the dashboard's included (so what was
    # typed on a form was moved there).
    stored = store_text(system)
    typed = {f"{m.case} {field_name}": value for m in cases.values() for field_name, value in m.typed.items()}
    missing = {where: value for where, value in typed.items() if value.lower() not in stored}
    assert not missing, f"typed but not in the case store: {missing}"

    with system.client() as client:
        scan = scan_prefect(client, events_since=since)
    for ref in cases:
        for run in CASE_RUNS:
            assert "flow run" in scan.kinds_with(f"{ref}{run}"), (ref, run, scan.counts)
    # (Every form is answered, so no run input is left to read; the referral canary test shows the
    # scan reads them.) It read what the runs wrote meanwhile.
    assert min(scan.counts.get(kind, 0) for kind in ("flow run state", "task run", "log", "event")) > 0
    # Every answer typed on a form is gone from Prefect once read (docs/architecture.md, "Data
    # protection"): no run of a case answered on the dashboard keeps a response.
    with system.client() as client:
        left = [f"{run.name}: {item.key}" for ref in cases for suffix in CASE_RUNS
                for run in system.runs_named(f"{ref}{suffix}")
                for item in client.filter_flow_run_input(run.id, key_prefix="", limit=PAGE,
                                                         exclude_keys=set())
                if item.key.endswith("-response")]
    assert left == []

    # Unfolded, as a mail client reads them: an invitation's lines are folded, and quoted-printable
    # bodies are broken by soft line breaks, either of which can cut a value in two.
    emails = [(subject, text.replace("=\r\n", "").replace("=\n", "").replace("\r\n ", "").replace("\n ", ""))
              for subject, text in email_texts(system)]
    assert any(forms_case.lower() in text for _, text in emails)
    # The meeting's place is the one typed value meant for email: the invitation tells everyone
    # where to go. Everything else stays in the store.
    places = [m.typed["meeting-place"].lower() for m in cases.values()]
    mailed = [f"{subject}: {value}" for subject, text in emails for where, value in typed.items()
              if value.lower() in text and not where.endswith("meeting-place")]
    for subject, text in emails:
        for place in places:
            text = text.replace(place, "")
        if token in text:
            mailed.append(f"{subject}: a marker")
    logs = [str(path) for path in system.data_dir.rglob("*.log")
            if token in path.read_text(errors="replace").lower()]
    print(f"\n{len(typed)} values typed; read {sum(scan.counts.values())} Prefect objects and "
          f"{len(emails)} emails")
    return CanaryFindings(typed=len(typed), prefect_objects_read=sum(scan.counts.values()),
                          emails_read=len(emails), prefect=scan.hits(token), mailed=mailed, logs=logs,
                          counts=scan.counts)
