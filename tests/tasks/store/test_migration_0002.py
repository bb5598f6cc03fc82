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
from tasks.store.db import HEAD_REVISION, MIGRATIONS_DIR, Store, current_revision, ensure_schema
from tasks.store.queries import case_view

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
        ensure_schema(store.engine)
        assert current_revision(store.engine) == HEAD_REVISION

        first = case_view(store.engine, partnership="default", case_ref="SR-2026-0001", today=TODAY)
        assert [(i.step, i.process, i.state) for i in first.steps] == [
            ("dsp-decision", "case", StepState.DONE), ("sin-submission", "case", StepState.DONE),
            ("partners-informed", "case", StepState.OPEN),
            ("rr-agency-responses", "rapid-review", StepState.OPEN),
            ("rr-meeting", "rapid-review", StepState.OPEN)]
        assert first.item("rr-meeting").title == "Rapid Review meeting is held"  # type: ignore[union-attr]
        assert dict(first.runs) == {"case": "11111111-1111-1111-1111-111111111111",
                                    "rapid-review": "22222222-2222-2222-2222-222222222222"}
        second = case_view(store.engine, partnership="default", case_ref="SR-2026-0002", today=TODAY)
        assert dict(second.runs) == {"case": None, "rapid-review": None}

        with store.engine.connect() as connection:
            timers = connection.execute(text(
                "SELECT i.step, t.state FROM timers t JOIN items i ON i.id = t.item_id ORDER BY t.id")).all()
        assert [(step, TimerState(state)) for step, state in timers] == [
            ("partners-informed", TimerState.SCHEDULED), ("rr-agency-responses", TimerState.SCHEDULED),
            ("rr-meeting", TimerState.SCHEDULED), ("rr-meeting", TimerState.SCHEDULED)]
    finally:
        store.dispose()
