"""The canary referral (issue 4, DESIGN.md §4): none of a referral's or a decision's free-text values
reaches Prefect, whichever door they came in by, read back through Prefect's own client.

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID, uuid4

import pytest

from deployments.local import STALL_ALLOWANCE, LocalSystem, wait_until
from tests.conftest import EXAMPLE_REFERRAL
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
        steps = system.sbu_json("status", case_ref)["steps"]
        return any(row["step"] == step and row["state"] == "done" for row in steps)

    try:
        wait_until(done, timeout=timeout, what=f"{case_ref} {step} to be recorded")
    except TimeoutError:
        runs = system.runs_named(case_ref)
        states = [(r.state.name, r.state.message) if r.state else None for r in runs]
        pytest.fail(f"{step} answered on the dashboard was never recorded in the case store; "
                    f"the case run is {states}")


def test_a_canary_referral_leaves_nothing_personal_in_prefect(
        local_system: SystemFactory, tmp_path: Path) -> None:
    test_started = datetime.now(UTC) - timedelta(seconds=5)
    token = f"zq{uuid4().hex[:10]}"  # z and q: never in a UUID or a hex digest
    by_cli, by_ui = Markers(token, "cli"), Markers(token, "ui")
    system = local_system(case_start=CASE_START)
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
    # The dashboard's answers, once read, are gone from the case run (DESIGN.md §4).
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
