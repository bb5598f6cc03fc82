"""Writing imported cases to a real case store (`tasks.importing`, `CaseService.replay`), on SQLite
and PostgreSQL: the same case as recorded step by step, nothing sent or timed for the past, the
audit trail marked, idempotent, and refused as the procedure refuses."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from models import schema
from models.calendar import london_time
from models.clock import FixedClock
from models.enums import Interface, StepState, TimerKind
from models.importing import ImportCase, moment_of, parse_file
from models.settings import Settings
from tasks.importing import ImportReport, RowStatus, import_cases
from tasks.service import Actor, CaseService
from tasks.store.audit import verify_audit_chain
from tasks.store.db import Store
from tests.import_cases import open_case, twenty_five_cases

NOW = datetime(2027, 6, 15, 11, 0, tzinfo=UTC)  # a Tuesday
TODAY = date(2027, 6, 15)
IMPORTER = Actor("sbu-officer", Interface.CLI)


@pytest.fixture
def service(store: Store, settings: Settings) -> CaseService:
    return CaseService(store=store, settings=settings, clock=FixedClock(NOW))


def run(service: CaseService, cases: list[Any], **options: Any) -> ImportReport:
    raw = json.dumps(cases).encode()
    parsed = parse_file(raw, name="tracker.json", now=service.clock.now(), registry=service.registry)
    return import_cases(service, parsed, file_name="tracker.json", importer=IMPORTER, **options)


def counts(service: CaseService) -> dict[str, int]:
    with service.store.reading() as session:
        return {table.name: session.execute(select(func.count()).select_from(table)).scalar_one()
                for table in (schema.cases, schema.items, schema.timers, schema.outbox, schema.audit_events,
                              schema.records, schema.decisions)}


def record_step_by_step(service: CaseService, case: ImportCase) -> str:
    """The case entered as an officer would have, each step on its day with the case clock there."""
    clock = service.clock
    assert isinstance(clock, FixedClock)
    moment = min(NOW, case.referral.referred_at)
    clock._moment = moment
    case_ref = service.refer(case.referral, actor=IMPORTER).case_ref
    for entry in case.history:
        moment = moment_of(entry.on, after=moment, now=NOW)
        clock._moment = moment
        who = Actor(entry.by, Interface.CLI) if entry.by else IMPORTER
        if entry.is_act:
            service.act(case_ref, entry.name, entry.form, actor=who)
        else:
            service.record(case_ref, entry.name, entry.form, actor=who)
    clock._moment = NOW
    return case_ref


def status(service: CaseService, case_ref: str) -> dict[str, Any]:
    view = service.case_view(case_ref)
    shown = view.as_json(stage=service.registry.stage_of(view))
    shown.pop("case_ref")
    return shown


@pytest.mark.parametrize("case", [
    pytest.param(open_case(1, today=TODAY, age=60), id="cspr-with-an-incomplete-imr"),
    pytest.param(open_case(2, today=TODAY, age=200), id="open-action-plan"),
    pytest.param(open_case(3, today=TODAY, age=30, near_miss=True), id="near-miss"),
    pytest.param(open_case(4, today=TODAY, age=20, category="death", looked_after=True,
                           abuse="not-suspected"), id="looked-after-child"),
    pytest.param(open_case(5, today=TODAY, age=4), id="notification"),
])
def test_an_imported_case_reads_as_the_same_case_recorded_step_by_step(
        service: CaseService, case: dict[str, Any]) -> None:
    report = run(service, [case])
    [row] = report.rows
    assert row.status is RowStatus.IMPORTED, row.problem
    assert row.case_ref is not None
    other = dict(case, referral=dict(case["referral"], external_ref="STEP-BY-STEP"))
    parsed = parse_file(json.dumps([other]).encode(), name="x.json", now=NOW, registry=service.registry)
    by_hand = record_step_by_step(service, parsed.cases[0])
    imported = status(service, row.case_ref)
    assert imported == status(service, by_hand)
    assert imported["steps"]  # a case with its history, not two empty ones


def test_an_incomplete_imr_has_the_rest_due_from_the_day_it_was_received(service: CaseService) -> None:
    case = open_case(1, today=TODAY, age=60)
    case["history"] = [entry for entry in case["history"]
                       if not (entry["step" if "step" in entry else "act"] == "cspr-imr"
                               and entry.get("agency") == "health" and not entry.get("missing_sections"))]
    [row] = run(service, [case]).rows
    assert row.case_ref is not None
    imr = service.case_view(row.case_ref).item("cspr-imr", "health")
    assert imr is not None
    received = date.fromisoformat(imr.details["received_on"])
    assert received == TODAY - timedelta(days=60 - 56)
    # Five working days after the day it was received (Friday 11 June 2027), not after the import.
    assert imr.due == date(2027, 6, 18)


def test_nothing_is_sent_for_the_history_and_only_the_future_is_timed(service: CaseService) -> None:
    report = run(service, twenty_five_cases(TODAY))
    assert report.counts == {"imported": 25}
    assert report.summary_queued
    with service.store.reading() as session:
        mail = session.execute(select(schema.outbox.c.event, schema.outbox.c.body_text)).all()
    [(event, body)] = mail
    assert event == "import-summary"
    late = [(row.case_ref, s) for row in report.rows for s in row.late]
    assert late, "the cases include late steps"
    for case_ref, step in late:
        label = f"{step.step}:{step.subject}" if step.subject else step.step
        assert f"{case_ref}  {label}  " in body
    timers = service.timers()
    assert timers
    assert all(timer.fire_at > NOW for timer in timers)
    next_working_day = london_time(date(2027, 6, 16), service.settings.alerts.escalation_time)
    for case_ref, step in late:
        mine = [(t.kind, t.sequence, t.fire_at) for t in timers
                if (t.case_ref, t.step, t.subject) == (case_ref, step.step, step.subject)]
        assert mine == [(TimerKind.ESCALATION, 1, next_working_day)]


def test_every_audit_event_says_it_was_imported_and_the_chain_holds(service: CaseService) -> None:
    report = run(service, [open_case(1, today=TODAY, age=40)])
    [row] = report.rows
    with service.store.reading() as session:
        events = session.execute(select(schema.audit_events.c.actor, schema.audit_events.c.via,
                                        schema.audit_events.c.detail, schema.audit_events.c.at)).all()
    assert len(events) > 20
    for _actor, _via, detail, at in events:
        mark = detail["imported"]
        assert (mark["by"], mark["file"], mark["sha256"]) == ("sbu-officer", "tracker.json", report.sha256)
        assert at == NOW  # written now, about the date it records
        assert date.fromisoformat(mark["on"]) <= TODAY
    # Each entry is recorded by whom the file says, through the import.
    assert {(actor, via) for actor, via, _, _ in events} >= {("Dana Lee", Interface.IMPORT),
                                                           ("sbu-officer", Interface.CLI)}
    assert verify_audit_chain(service.store.engine).intact
    assert row.case_ref is not None
    decision = service.case_view(row.case_ref).item("dsp-decision")
    assert decision is not None
    assert (decision.completed_by, decision.completed_via) == ("Dana Lee", Interface.IMPORT)


def test_the_same_file_again_changes_nothing_and_a_changed_row_is_refused(service: CaseService) -> None:
    cases = [open_case(1, today=TODAY, age=40), open_case(2, today=TODAY, age=5)]
    first = run(service, cases)
    before = counts(service)
    again = run(service, cases)
    assert [row.status for row in again.rows] == [RowStatus.UNCHANGED] * 2
    assert [row.case_ref for row in again.rows] == [row.case_ref for row in first.rows]
    assert not again.summary_queued
    assert counts(service) == before
    changed = [cases[0], dict(cases[1], history=cases[1]["history"][:-1])]
    report = run(service, changed)
    assert report.rows[0].status is RowStatus.UNCHANGED
    refused = report.rows[1]
    assert refused.status is RowStatus.REFUSED
    assert refused.problem is not None
    assert refused.problem.row == 2
    assert "different version of this row" in refused.problem.reason
    assert counts(service) == before


def test_a_case_recorded_step_by_step_is_not_imported_over(service: CaseService) -> None:
    case = open_case(1, today=TODAY, age=5)
    parsed = parse_file(json.dumps([case]).encode(), name="x.json", now=NOW, registry=service.registry)
    record_step_by_step(service, parsed.cases[0])
    [row] = run(service, [case]).rows
    assert row.status is RowStatus.REFUSED
    assert row.problem is not None
    assert "referred there, not imported" in row.problem.reason


def _with(case: dict[str, Any], index: int, **changes: Any) -> dict[str, Any]:
    history = [dict(entry) for entry in case["history"]]
    history[index].update(changes)
    return dict(case, history=history)


def _bad_cases() -> list[tuple[dict[str, Any], str, str]]:
    notified = open_case(1, today=TODAY, age=30)
    near_miss = open_case(2, today=TODAY, age=30, near_miss=True)
    looked_after = open_case(3, today=TODAY, age=10, category="death", looked_after=True,
                             abuse="not-suspected")
    sin_at = next(i for i, e in enumerate(notified["history"]) if e.get("step") == "sin-submission")
    return [
        # Submitted before the local authority became aware (after the police referred): before
        # its clock started.
        (dict(_with(notified, sin_at, completed_on="2027-05-18"),
              referral=dict(notified["referral"], la_aware_date="2027-05-19")),
         f"history[{sin_at}].completed_on", "before the step's clock"),
        # A near miss has no SIN.
        (dict(near_miss, history=[*near_miss["history"], {"step": "sin-submission", "national_ref": "X-1",
                                                          "completed_on": "2027-06-01"}]),
         f"history[{len(near_miss['history'])}].completed_on", "not waiting for sin-submission"),
        # A looked-after child's death must be notified.
        (_with(looked_after, 0, sin=False, rapid_review=False), "history[0].decided_on", "a SIN is required"),
    ]


@pytest.mark.parametrize(("case", "column", "reason"), _bad_cases())
def test_the_procedure_refuses_a_history_as_it_would_step_by_step(
        service: CaseService, case: dict[str, Any], column: str, reason: str) -> None:
    before = counts(service)
    [row] = run(service, [case]).rows
    assert row.status is RowStatus.REFUSED
    assert row.problem is not None
    assert (row.problem.row, row.problem.column) == (1, column)
    assert reason in row.problem.reason
    assert counts(service) == before


def test_a_dry_run_writes_nothing_and_says_what_it_would_create(service: CaseService) -> None:
    bad = _bad_cases()[0][0]
    before = counts(service)
    report = run(service, [open_case(7, today=TODAY, age=14), bad], dry_run=True)
    good, refused = report.rows
    assert good.status is RowStatus.WOULD_IMPORT
    assert (good.case_ref, good.stage, good.path) == (None, "cspr", "sin-and-rapid-review")
    assert "cspr-reviewer-appointed" in good.open_steps
    assert good.late
    assert {f"{s.step}:{s.subject}" if s.subject else s.step for s in good.late} <= set(good.open_steps)
    assert refused.status is RowStatus.REFUSED
    assert counts(service) == before


def test_an_atomic_import_writes_nothing_if_a_row_is_refused(service: CaseService) -> None:
    before = counts(service)
    good = open_case(7, today=TODAY, age=60)
    report = run(service, [good, _bad_cases()[0][0]], atomic=True)
    assert [row.status for row in report.rows] == [RowStatus.NOT_WRITTEN, RowStatus.REFUSED]
    assert counts(service) == before
    report = run(service, [good, open_case(2, today=TODAY, age=3)], atomic=True)
    assert [row.status for row in report.rows] == [RowStatus.IMPORTED] * 2
    assert report.summary_queued
    assert all(service.case_view(row.case_ref).steps for row in report.rows if row.case_ref)


def test_open_steps_not_yet_due_keep_their_reminders(service: CaseService) -> None:
    [row] = run(service, [open_case(1, today=TODAY, age=1)]).rows
    assert row.case_ref is not None
    decision = service.case_view(row.case_ref).item("dsp-decision")
    assert decision is not None
    assert decision.state is StepState.OPEN
    assert decision.due == TODAY  # one working day after Monday's referral
    kinds = {t.kind for t in service.timers(case_ref=row.case_ref)}
    # Its reminder (Monday 09:00) is past: the overdue alert tonight and the escalation to come.
    assert kinds == {TimerKind.OVERDUE, TimerKind.ESCALATION}
