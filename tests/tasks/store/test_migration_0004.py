"""A store with an audit trail (migration 0003) is chained by hash when it is upgraded to 0004: every
existing row gets its link and hash in id order (ids with gaps, as rolled-back transactions leave
them on PostgreSQL, included), the chain's head records the newest, the append-only triggers are
there again afterwards, and new events link after the old. Downgrading gives back 0003's table with
its triggers. On SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import JSON, Engine, Integer, String, column, inspect, select, table, text
from sqlalchemy.exc import DBAPIError

from models import schema
from models.audit import GENESIS, AuditRow
from models.enums import Interface
from models.schema import UtcDateTime
from models.settings import Settings
from tasks.store.audit import verify_audit_chain
from tasks.store.db import HEAD_REVISION, MIGRATIONS_DIR, Store, current_revision, ensure_schema
from tasks.store.repositories import add_audit_event
from tests.tasks.store.test_migration_0002 import upgrade_to

AT = datetime(2026, 12, 23, 10, 15, 0, 123456, tzinfo=UTC)

# The rows a 0003 store holds, as its code wrote them.
OLD_EVENTS: list[dict[str, Any]] = [
    {"id": 1, "case_id": 1, "at": AT, "actor": "officer.one", "via": "cli", "action": "case-referred",
     "detail": {"category": "serious-harm", "children": 1}},
    {"id": 2, "case_id": 1, "at": AT + timedelta(seconds=1), "actor": "system", "via": "system",
     "action": "step-opened", "detail": {"step": "dsp-decision", "due": "2026-12-24"}},
    # Ids 3 and 4 were rolled back.
    {"id": 5, "case_id": 1, "at": AT + timedelta(days=1), "actor": "Siân Ní Bhriain", "via": "prefect-ui",
     "action": "step-retimed",
     "detail": {"step": "sin-submission", "reason": "L'officier est malade — back on the 5th", "was": None}},
    {"id": 6, "case_id": None, "at": AT + timedelta(days=2), "actor": "system", "via": "system",
     "action": "outbox-requeued", "detail": {"outbox_id": 3, "event": "digest", "requeues": 1, "ratio": 0.1}},
]


def downgrade_to(engine: Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def insert_case(engine: Engine) -> None:
    """The case the old events belong to, as a 0003 store holds it."""
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO cases (id, case_ref, partnership, referring_agency, external_ref, fingerprint, "
            "category, abuse_or_neglect, status, incident_on, la_aware_on, referred_at, referred_on, "
            "created_at) VALUES (1, 'SR-2026-0001', 'default', 'police', 'POL-1', 'f', 'serious-harm', "
            "'suspected', 'awaiting-decision', :day, :day, :at, :day, :at)"),
            {"day": AT.date(), "at": AT})


def insert_old_events(engine: Engine) -> None:
    # Through the column types the 0003 code wrote with, so the stored text is what it wrote.
    events = table("audit_events", column("id", Integer()), column("case_id", Integer()),
                   column("at", UtcDateTime()), column("actor", String()), column("via", String()),
                   column("action", String()), column("detail", JSON()))
    with engine.begin() as connection:
        connection.execute(events.insert(), OLD_EVENTS)


def stored(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(select(schema.audit_events).order_by(schema.audit_events.c.id)))


def assert_append_only(engine: Engine) -> None:
    for statement in ("UPDATE audit_events SET actor = 'someone else'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))


def test_an_existing_trail_is_chained_by_the_upgrade(settings: Settings) -> None:
    store = Store(settings.sqlalchemy_url)
    try:
        upgrade_to(store.engine, "0003_reviews")
        insert_case(store.engine)
        insert_old_events(store.engine)
        ensure_schema(store.engine)
        assert current_revision(store.engine) == HEAD_REVISION

        rows = stored(store.engine)
        assert [row.id for row in rows] == [event["id"] for event in OLD_EVENTS]
        # The content is untouched, and each row's hash is the one the code computes today: the
        # migration's own copy of the canonical form agrees with `models.audit`.
        expected_prev = GENESIS
        for row, event in zip(rows, OLD_EVENTS, strict=True):
            assert (row.actor, row.via.value, row.action, row.detail, row.at) == (
                event["actor"], event["via"], event["action"], event["detail"], event["at"])
            recomputed = AuditRow.linked(**{**event, "prev_hash": expected_prev})
            assert (row.prev_hash, row.hash) == (expected_prev, recomputed.hash)
            expected_prev = row.hash
        with store.engine.connect() as connection:
            head = connection.execute(select(schema.audit_chain_head)).one()
        assert (head.id, head.last_id, head.last_hash) == (1, 6, rows[-1].hash)
        report = verify_audit_chain(store.engine)
        assert (report.intact, report.rows) == (True, len(OLD_EVENTS))

        assert_append_only(store.engine)
        # New events carry on from the newest old one.
        with store.transaction() as session:
            add_audit_event(session=session, case_id=1, at=AT + timedelta(days=3), actor="officer.one",
                            via=Interface.CLI, action="step-completed", detail={"step": "dsp-decision"})
        newest = stored(store.engine)[-1]
        assert (newest.id, newest.prev_hash) == (7, rows[-1].hash)
        assert verify_audit_chain(store.engine).intact
    finally:
        store.dispose()


def test_an_empty_trail_gets_a_head_at_the_start(settings: Settings) -> None:
    store = Store(settings.sqlalchemy_url)
    try:
        upgrade_to(store.engine, "0003_reviews")
        ensure_schema(store.engine)
        with store.engine.connect() as connection:
            head = connection.execute(select(schema.audit_chain_head)).one()
        assert (head.last_id, head.last_hash) == (0, GENESIS)
        assert verify_audit_chain(store.engine).intact
    finally:
        store.dispose()


def test_the_downgrade_gives_back_0003s_table_with_its_triggers(settings: Settings) -> None:
    store = Store(settings.sqlalchemy_url)
    try:
        upgrade_to(store.engine, "0003_reviews")
        insert_case(store.engine)
        insert_old_events(store.engine)
        ensure_schema(store.engine)
        downgrade_to(store.engine, "0003_reviews")
        with store.engine.connect() as connection:
            columns = list(connection.execute(text("SELECT * FROM audit_events ORDER BY id")).keys())
            assert "audit_chain_head" not in inspect(connection).get_table_names()
        assert columns == ["id", "case_id", "at", "actor", "via", "action", "detail"]
        assert_append_only(store.engine)
        # And up again: the same chain.
        ensure_schema(store.engine)
        assert verify_audit_chain(store.engine).intact
        assert_append_only(store.engine)
    finally:
        store.dispose()
