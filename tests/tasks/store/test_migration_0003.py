"""A store made by the procedure engine (migration 0002) keeps every case when it is upgraded for the
reviews (0003): each agency's Rapid Review information becomes an item of its own with its own
timers, the DSPs' signatures are kept by role, and the case reads as it did. On SQLite and on
PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from sqlalchemy import Engine, text

from models.enums import Agency, StepState, TimerState
from models.settings import Settings
from tasks.store.db import HEAD_REVISION, Store, current_revision, ensure_schema
from tasks.store.queries import case_view
from tests.tasks.store.test_migration_0002 import upgrade_to

AT = datetime(2026, 12, 23, 10, 15, tzinfo=UTC)
TODAY = date(2027, 1, 5)
DUE = date(2027, 1, 6)


def insert_engine_case(engine: Engine) -> None:
    """A notified case as 0002 kept it: police have responded, health has not; one agency-responses
    item with its reminder and overdue timers, and a decision with three names."""
    with engine.begin() as connection:
        case_id = connection.execute(text(
            "INSERT INTO cases (case_ref, partnership, referring_agency, external_ref, fingerprint, "
            "category, abuse_or_neglect, status, path, incident_on, la_aware_on, referred_at, "
            "referred_on, decided_on, sin_submitted_on, notified_on, created_at) "
            "VALUES ('SR-2026-0001', 'default', 'police', 'P-1', 'f', 'serious-harm', 'suspected', "
            "'in-progress', 'sin-and-rapid-review', :day, :day, :at, :day, :day, :notified, :notified, :at) "
            "RETURNING id"),
            {"day": date(2026, 12, 23), "notified": date(2026, 12, 29), "at": AT}).scalar_one()
        for agency, responded in (("police", date(2027, 1, 4)), ("health", None)):
            connection.execute(text("INSERT INTO case_agencies (case_id, agency, responded_on) "
                                    "VALUES (:id, :agency, :on)"),
                               {"id": case_id, "agency": agency, "on": responded})
        item_id = connection.execute(text(
            "INSERT INTO items (case_id, process, step, subject, title, state, anchor, anchor_on, due_on, "
            "rule, opened_at) VALUES (:id, 'rapid-review', 'rr-agency-responses', '', "
            "'Every involved agency returns its information', 'open', 'notification', :notified, :due, "
            "'5 working days after notification', :at) RETURNING id"),
            {"id": case_id, "notified": date(2026, 12, 29), "due": DUE, "at": AT}).scalar_one()
        for kind, fire_at in (("reminder", datetime(2027, 1, 5, 9, tzinfo=UTC)),
                              ("overdue", datetime(2027, 1, 7, 0, 1, tzinfo=UTC))):
            connection.execute(text(
                "INSERT INTO timers (case_id, item_id, kind, sequence, fire_at, key, state, flow_run_id) "
                "VALUES (:id, :item, :kind, 0, :fire_at, :key, 'scheduled', :run)"),
                {"id": case_id, "item": item_id, "kind": kind, "fire_at": fire_at,
                 "key": f"sr-2026-0001-rr-agency-responses-{kind}-0-20270106",
                 "run": "33333333-3333-3333-3333-333333333333"})
        connection.execute(text(
            "INSERT INTO decisions (case_id, sin, rapid_review, path, rationale, dsps_present, decided_on, "
            "recorded_at, recorded_by, recorded_via) VALUES (:id, true, true, 'sin-and-rapid-review', "
            "'Criteria met.', :names, :day, :at, 'sbu-officer', 'cli')"),
            {"id": case_id, "names": '{"names": ["Dana Lee", "Sam Patel", "Alex Morgan"]}',
             "day": date(2026, 12, 23), "at": AT})


def test_an_engine_store_keeps_its_cases_through_the_upgrade(settings: Settings) -> None:
    store = Store(settings.sqlalchemy_url)
    try:
        upgrade_to(store.engine, "0002_procedure_engine")
        insert_engine_case(store.engine)
        ensure_schema(store.engine)
        assert current_revision(store.engine) == HEAD_REVISION

        view = case_view(store.engine, partnership="default", case_ref="SR-2026-0001", today=TODAY)
        responses = {item.subject: item for item in view.items_of("rr-agency-responses")}
        assert set(responses) == {"police", "health"}
        assert (responses["police"].state, responses["police"].completed_on) == (StepState.DONE,
                                                                                  date(2027, 1, 4))
        assert (responses["health"].state, responses["health"].due) == (StepState.OPEN, DUE)
        assert responses["health"].agency is Agency.HEALTH
        assert responses["health"].title == "Agency information for the Rapid Review"
        assert view.agencies == (Agency.HEALTH, Agency.POLICE)

        with store.engine.connect() as connection:
            timers = connection.execute(text(
                "SELECT i.subject, t.kind, t.key, t.state, t.flow_run_id FROM timers t "
                "JOIN items i ON i.id = t.item_id ORDER BY t.id")).all()
            sign_off = connection.execute(text("SELECT sign_off FROM decisions")).scalar_one()
        # The agency still to respond keeps its reminder and overdue alert, under keys of its own,
        # for `sbu serve` to schedule; the old timers are gone (their runs find nothing and exit).
        assert [(subject, kind, key, TimerState(state), run)
                for subject, kind, key, state, run in timers] == [
            ("health", "reminder", "sr-2026-0001-rr-agency-responses-health-reminder-0-20270106",
             TimerState.SCHEDULED, None),
            ("health", "overdue", "sr-2026-0001-rr-agency-responses-health-overdue-0-20270106",
             TimerState.SCHEDULED, None)]
        stored = sign_off if isinstance(sign_off, dict) else json.loads(sign_off)
        assert stored == {"sign_off": [{"role": "dsp-la", "name": "Dana Lee", "deputy": False},
                                       {"role": "dsp-health", "name": "Sam Patel", "deputy": False},
                                       {"role": "dsp-police", "name": "Alex Morgan", "deputy": False}]}
    finally:
        store.dispose()
