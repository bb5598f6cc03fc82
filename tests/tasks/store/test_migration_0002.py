"""A store made by the spine (migration 0001) keeps every case when it is upgraded to the procedure
engine (0002): steps become items, timers point at their item, and each flow run becomes a row of
`case_runs`. On SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from models.enums import StepState, TimerState
from models.settings import Settings
from tasks.store.db import MIGRATIONS_DIR, Store, current_revision

AT = datetime(2026, 12, 23, 10, 15, tzinfo=UTC)
TODAY = date(2026, 12, 24)


def upgrade_to(engine: Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def insert_spine_case(engine: Engine, *, number: int, run: str | None, rapid_review_run: str | None,
                      steps: list[tuple[str, str]]) -> None:
    with engine.begin() as connection:
        case_id = connection.execute(text(
            "INSERT INTO cases (case_ref, partnership, referring_agency, external_ref, fingerprint, "
            "category, abuse_or_neglect, status, path, incident_on, la_aware_on, referred_at, referred_on, "
            "decided_on, sin_submitted_on, notified_on, flow_run_id, rapid_review_run_id, created_at) VALUES "
            "(:ref, 'default', 'police', :ext, 'f', 'serious-harm', 'suspected', 'in-progress', "
            "'sin-and-rapid-review', :day, :day, :at, :day, :day, :day, :day, :run, :rr, :at) RETURNING id"),
            {"ref": f"SR-2026-{number:04d}", "ext": f"POL-{number}", "day": date(2026, 12, 23), "at": AT,
             "run": run, "rr": rapid_review_run}).scalar_one()
        connection.execute(text("INSERT INTO case_agencies (case_id, agency) VALUES (:id, 'police')"),
                           {"id": case_id})
        for step, state in steps:
            step_id = connection.execute(text(
                "INSERT INTO steps (case_id, step, state, anchor_on, due_on, rule, opened_at, completed_on) "
                "VALUES (:id, :step, :state, :day, :due, 'a rule', :at, :done) RETURNING id"),
                {"id": case_id, "step": step, "state": state, "day": date(2026, 12, 23),
                 "due": date(2027, 1, 4), "at": AT,
                 "done": date(2026, 12, 23) if state == "done" else None}).scalar_one()
            if state == "open":
                connection.execute(text(
                    "INSERT INTO timers (case_id, step, kind, sequence, fire_at, key, state) VALUES "
                    "(:id, :step, 'overdue', 0, :at, :key, 'scheduled')"),
                    {"id": case_id, "step": step, "at": AT,
                     "key": f"sr-2026-{number:04d}-{step}-overdue-{step_id}"})


def test_a_spine_store_keeps_its_cases_through_the_upgrade(settings: Settings) -> None:
    store = Store(settings.sqlalchemy_url)
    try:
        upgrade_to(store.engine, "0001_initial")
        insert_spine_case(store.engine, number=1, run="11111111-1111-1111-1111-111111111111",
                          rapid_review_run="22222222-2222-2222-2222-222222222222",
                          steps=[("dsp-decision", "done"), ("sin-submission", "done"),
                                 ("partners-informed", "open"), ("rr-agency-responses", "open"),
                                 ("rr-meeting", "open")])
        # Decided and notified, but Prefect never told of its Rapid Review: the row says it runs.
        insert_spine_case(store.engine, number=2, run=None, rapid_review_run=None,
                          steps=[("dsp-decision", "done"), ("rr-meeting", "open")])
        upgrade_to(store.engine, "0002_procedure_engine")
        assert current_revision(store.engine) == "0002_procedure_engine"

        # Read as the 0002 schema has them (the queries of today read the newest schema).
        with store.engine.connect() as connection:
            items = connection.execute(text(
                "SELECT c.case_ref, i.step, i.process, i.state, i.title FROM items i "
                "JOIN cases c ON c.id = i.case_id ORDER BY i.id")).all()
            runs = connection.execute(text(
                "SELECT c.case_ref, r.process, r.flow_run_id FROM case_runs r "
                "JOIN cases c ON c.id = r.case_id ORDER BY c.case_ref, r.process")).all()
        first = [(step, process, StepState(state)) for ref, step, process, state, _ in items
                 if ref == "SR-2026-0001"]
        assert first == [
            ("dsp-decision", "case", StepState.DONE), ("sin-submission", "case", StepState.DONE),
            ("partners-informed", "case", StepState.OPEN),
            ("rr-agency-responses", "rapid-review", StepState.OPEN),
            ("rr-meeting", "rapid-review", StepState.OPEN)]
        titles = {title for _, step, _, _, title in items if step == "rr-meeting"}
        assert titles == {"Rapid Review meeting is held"}
        assert [tuple(run) for run in runs] == [
            ("SR-2026-0001", "case", "11111111-1111-1111-1111-111111111111"),
            ("SR-2026-0001", "rapid-review", "22222222-2222-2222-2222-222222222222"),
            ("SR-2026-0002", "case", None), ("SR-2026-0002", "rapid-review", None)]

        with store.engine.connect() as connection:
            timers = connection.execute(text(
                "SELECT i.step, t.state FROM timers t JOIN items i ON i.id = t.item_id ORDER BY t.id")).all()
        assert [(step, TimerState(state)) for step, state in timers] == [
            ("partners-informed", TimerState.SCHEDULED), ("rr-agency-responses", TimerState.SCHEDULED),
            ("rr-meeting", TimerState.SCHEDULED), ("rr-meeting", TimerState.SCHEDULED)]
    finally:
        store.dispose()
