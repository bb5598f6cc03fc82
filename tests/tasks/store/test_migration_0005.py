"""A store whose anchor dates are columns of `cases` (migration 0004) keeps every date when it is
upgraded to anchor rows (0005): each date becomes a row of `case_anchors` and the columns go, the
referral's own dates stay on `cases` and are its first two anchors, and an item whose due date a
person set (its rule said "set by ...") is marked so, and keeps that date when its anchor moves.
Downgrading gives the columns back, and is refused while a process's own anchor is stored. On
SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Date, Engine, Integer, String, column, inspect, select, table, text

from models import schema
from models.clock import FixedClock
from models.enums import Anchor, Interface
from models.forms import RetimeForm
from models.processes import StepId
from models.settings import Settings
from tasks.service import Actor, CaseService
from tasks.store.db import HEAD_REVISION, Store, current_revision, ensure_schema
from tasks.store.queries import case_view
from tests.tasks.store.test_migration_0002 import upgrade_to
from tests.tasks.store.test_migration_0004 import downgrade_to

AT = datetime(2027, 1, 11, 10, 15, tzinfo=UTC)
TODAY = date(2027, 2, 1)
OFFICER = Actor("officer.one", Interface.CLI)

# The dates of the CSPR case, as 0004 kept them in its columns.
ANCHORS = {
    "referral-received": date(2027, 1, 11), "la-aware": date(2027, 1, 8), "decision": date(2027, 1, 12),
    "notification": date(2027, 1, 13), "sin-submitted": date(2027, 1, 13), "meeting": date(2027, 1, 21),
    "rr-outcome": date(2027, 1, 22), "rr-report-sent": date(2027, 1, 25),
    "cspr-commissioned": date(2027, 1, 26), "planned-publication": date(2027, 7, 26),
    "imrs-requested": date(2027, 1, 27),
}
MOVED_COLUMNS = ("decided_on", "sin_submitted_on", "notified_on", "meeting_on", "rr_outcome_on",
                 "rr_report_sent_on", "cspr_commissioned_on", "planned_publication_on",
                 "imrs_requested_on", "cspr_published_on")
PANEL_DUE = date(2027, 3, 1)
COUNTED_DUE = date(2027, 3, 10)  # 30 working days after 27 January 2027


def insert_0004_cases(engine: Engine) -> None:
    """Two cases as 0004 wrote them: one in its CSPR, with the police IMR due on the date the panel
    set and health's counted from the requests; one just referred."""
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO cases (id, case_ref, partnership, referring_agency, external_ref, fingerprint, "
            "category, abuse_or_neglect, status, path, incident_on, la_aware_on, referred_at, referred_on, "
            "decided_on, sin_submitted_on, notified_on, meeting_on, rr_outcome_on, rr_report_sent_on, "
            "cspr_commissioned_on, planned_publication_on, imrs_requested_on, review, created_at) VALUES "
            "(1, 'SR-2027-0001', 'default', 'police', 'POL-1', 'f', 'serious-harm', 'suspected', "
            "'in-progress', 'sin-and-rapid-review', :incident, :aware, :at, :referred, :decided, :sin, "
            ":notified, :meeting, :outcome, :sent, :commissioned, :planned, :requested, 'local-cspr', :at)"),
            {"incident": date(2027, 1, 7), "aware": ANCHORS["la-aware"], "at": AT,
             "referred": ANCHORS["referral-received"], "decided": ANCHORS["decision"],
             "sin": ANCHORS["sin-submitted"], "notified": ANCHORS["notification"],
             "meeting": ANCHORS["meeting"], "outcome": ANCHORS["rr-outcome"],
             "sent": ANCHORS["rr-report-sent"],
             "commissioned": ANCHORS["cspr-commissioned"], "planned": ANCHORS["planned-publication"],
             "requested": ANCHORS["imrs-requested"]})
        connection.execute(text(
            "INSERT INTO cases (id, case_ref, partnership, referring_agency, external_ref, fingerprint, "
            "category, abuse_or_neglect, status, incident_on, la_aware_on, referred_at, referred_on, "
            "created_at) VALUES (2, 'SR-2027-0002', 'default', 'health', 'H-2', 'g', 'death', 'known', "
            "'awaiting-decision', :day, :day, :at, :day, :at)"), {"day": date(2027, 1, 11), "at": AT})
        for case_id in (1, 2):
            connection.execute(text("INSERT INTO case_agencies (case_id, agency) VALUES (:id, 'police'), "
                                    "(:id, 'health')"), {"id": case_id})
        for process in ("case", "rapid-review", "cspr"):
            connection.execute(text("INSERT INTO case_runs (case_id, process, started_at) "
                                    "VALUES (1, :process, :at)"), {"process": process, "at": AT})
        connection.execute(text("INSERT INTO case_runs (case_id, process, started_at) "
                                "VALUES (2, 'case', :at)"), {"at": AT})
        items = [
            (1, "cspr", "cspr-imr", "police", "Individual Management Review", "imrs-requested",
             ANCHORS["imrs-requested"], PANEL_DUE, "set by the review panel", "police"),
            (1, "cspr", "cspr-imr", "health", "Individual Management Review", "imrs-requested",
             ANCHORS["imrs-requested"], COUNTED_DUE, "30 working days after imrs-requested", "health"),
            (2, "case", "dsp-decision", "", "DSPs decide on a SIN and a Rapid Review", "referral-received",
             date(2027, 1, 11), date(2027, 1, 12), "1 working day after referral-received", None),
        ]
        for case_id, process, step, subject, title, anchor, anchor_on, due, rule, agency in items:
            connection.execute(text(
                "INSERT INTO items (case_id, process, step, subject, title, state, anchor, anchor_on, "
                "due_on, rule, opened_at, agency) VALUES (:case, :process, :step, :subject, :title, 'open', "
                ":anchor, :anchor_on, :due, :rule, :at, :agency)"),
                {"case": case_id, "process": process, "step": step, "subject": subject, "title": title,
                 "anchor": anchor, "anchor_on": anchor_on, "due": due, "rule": rule, "at": AT,
                 "agency": agency})


def case_columns(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return {column["name"] for column in inspect(connection).get_columns("cases")}


def test_the_anchor_columns_become_rows_through_the_upgrade(settings: Settings) -> None:
    store = Store(settings.sqlalchemy_url)
    try:
        upgrade_to(store.engine, "0004_audit_chain")
        insert_0004_cases(store.engine)
        ensure_schema(store.engine)
        assert current_revision(store.engine) == HEAD_REVISION

        cspr = case_view(store.engine, partnership="default", case_ref="SR-2027-0001", today=TODAY)
        assert {anchor.value: on for anchor, on in cspr.anchors.items()} == ANCHORS
        assert all(type(anchor) is Anchor for anchor in cspr.anchors)
        referred = case_view(store.engine, partnership="default", case_ref="SR-2027-0002", today=TODAY)
        assert dict(referred.anchors) == {Anchor.REFERRAL_RECEIVED: date(2027, 1, 11),
                                          Anchor.LA_AWARE: date(2027, 1, 11)}
        assert referred.referred_on == date(2027, 1, 11)

        # The columns are gone; the referral's own dates stay on the case as referred.
        columns = case_columns(store.engine)
        assert not columns & set(MOVED_COLUMNS)
        assert {"incident_on", "la_aware_on", "referred_at", "referred_on"} <= columns
        with store.engine.connect() as connection:
            rows = connection.execute(select(schema.case_anchors.c.case_id, schema.case_anchors.c.anchor)
                                      .order_by(schema.case_anchors.c.case_id)).all()
            anchor_column = next(c for c in inspect(connection).get_columns("items") if c["name"] == "anchor")
        assert len(rows) == len(ANCHORS) + 2
        assert isinstance(anchor_column["type"], String)
        assert anchor_column["type"].length == 40

        imrs = {item.subject: item for item in cspr.items_of(StepId.CSPR_IMR)}
        assert (imrs["police"].due_set_by_person, imrs["health"].due_set_by_person) == (True, False)
        assert imrs["police"].rule == "set by the review panel"  # the words people read stay
        assert not referred.item(StepId.DSP_DECISION).due_set_by_person  # type: ignore[union-attr]

        # Moved, the requests' anchor carries the counted IMR with it and leaves the panel's date.
        service = CaseService(store=store, settings=settings,
                              clock=FixedClock(datetime(2027, 2, 1, 9, 0, tzinfo=UTC)))
        resent = RetimeForm(due=date(2027, 1, 29), reason="Requests resent")
        outcome = service.move_anchor("SR-2027-0001", Anchor.IMRS_REQUESTED, resent, actor=OFFICER)
        assert outcome.retimed == ("cspr-imr:health",)
        moved = service.case_view("SR-2027-0001")
        imrs = {item.subject: item for item in moved.items_of(StepId.CSPR_IMR)}
        assert (imrs["police"].due, imrs["health"].due) == (PANEL_DUE, date(2027, 3, 12))
        assert moved.anchors[Anchor.IMRS_REQUESTED] == date(2027, 1, 29)
    finally:
        store.dispose()


def test_the_downgrade_gives_the_columns_back(settings: Settings) -> None:
    store = Store(settings.sqlalchemy_url)
    try:
        upgrade_to(store.engine, "0004_audit_chain")
        insert_0004_cases(store.engine)
        ensure_schema(store.engine)
        downgrade_to(store.engine, "0004_audit_chain")
        assert set(MOVED_COLUMNS) <= case_columns(store.engine)
        old_cases = table("cases", column("id", Integer()), column("la_aware_on", Date()),
                          *(column(name, Date()) for name in MOVED_COLUMNS))
        with store.engine.connect() as connection:
            row = connection.execute(select(old_cases).where(old_cases.c.id == 1)).mappings().one()
            tables = inspect(connection).get_table_names()
            item_columns = {c["name"] for c in inspect(connection).get_columns("items")}
        assert {name: row[name] for name in ("la_aware_on", "decided_on", "imrs_requested_on",
                                             "planned_publication_on", "cspr_published_on")} == {
            "la_aware_on": ANCHORS["la-aware"], "decided_on": ANCHORS["decision"],
            "imrs_requested_on": ANCHORS["imrs-requested"],
            "planned_publication_on": ANCHORS["planned-publication"], "cspr_published_on": None}
        assert "case_anchors" not in tables
        assert "due_set_by_person" not in item_columns
        # And up again: the same anchors.
        ensure_schema(store.engine)
        cspr = case_view(store.engine, partnership="default", case_ref="SR-2027-0001", today=TODAY)
        assert {anchor.value: on for anchor, on in cspr.anchors.items()} == ANCHORS
    finally:
        store.dispose()


def test_the_downgrade_is_refused_while_a_process_anchor_is_stored(settings: Settings) -> None:
    store = Store(settings.sqlalchemy_url)
    try:
        upgrade_to(store.engine, "0004_audit_chain")
        insert_0004_cases(store.engine)
        ensure_schema(store.engine)
        with store.engine.begin() as connection:
            connection.execute(schema.case_anchors.insert().values(
                case_id=1, anchor=Anchor("toy-visit-booked"), anchor_on=date(2027, 1, 20)))
        with pytest.raises(NotImplementedError, match="backup"):
            downgrade_to(store.engine, "0004_audit_chain")
        assert current_revision(store.engine) == HEAD_REVISION
    finally:
        store.dispose()
