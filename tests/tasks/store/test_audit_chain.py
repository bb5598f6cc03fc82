"""The audit trail's hash chain in a real store, on SQLite and on PostgreSQL: a chain written by
real case changes verifies; rows changed, deleted, reordered or forged in the database with the
append-only triggers dropped are named by `verify_audit_chain`, first bad row first; concurrent
writers on PostgreSQL keep one line, and the chain's lock holds back only other audit writers."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, func, select, text
from sqlalchemy.exc import DBAPIError

from models import schema
from models.audit import GENESIS, AuditRow, Problem, row_hash
from models.clock import FixedClock
from models.enums import Anchor, Interface
from models.errors import SbuError
from models.forms import DspDecisionForm, RetimeForm, SinSubmissionForm, parse_referral
from models.processes import StepId
from models.settings import Settings
from tasks.service import Actor, CaseService
from tasks.store import repositories as repo
from tasks.store.audit import audit_entries, verify_audit_chain
from tasks.store.db import Store
from tasks.store.repositories import add_audit_event
from tests.conftest import EXAMPLE_NOW, EXAMPLE_REFERRAL, SIGNATURES, postgres_schema_url

OFFICER = Actor("sbu-officer", Interface.CLI)
REASON = "The LA's named officer is off sick until the fifth"


def referral(number: int) -> Any:
    data = copy.deepcopy(EXAMPLE_REFERRAL)
    data["external_ref"] = f"POL-2026-{number:04d}"
    return parse_referral(data, now=EXAMPLE_NOW)


def decision() -> DspDecisionForm:
    return DspDecisionForm.model_validate({"sin": True, "rapid_review": True,
                                           "rationale": "Criteria met on the facts known.", **SIGNATURES,
                                           "decided_on": date(2026, 12, 23)})


def build_case_history(service: CaseService) -> str:
    """A case taken through referral, decision, the SIN, a re-timed step and a moved anchor."""
    ref = service.refer(referral(1), actor=OFFICER).case_ref
    service.decide(ref, decision(), actor=OFFICER)
    service.retime(ref, StepId.PARTNERS_INFORMED, RetimeForm(due=date(2027, 1, 5), reason=REASON),
                   actor=OFFICER)
    service.record(ref, StepId.SIN_SUBMISSION,
                   SinSubmissionForm(national_ref="CSIN-1", completed_on=date(2026, 12, 23)), actor=OFFICER)
    service.move_anchor(ref, Anchor.NOTIFICATION, RetimeForm(due=date(2026, 12, 24), reason=REASON),
                        actor=OFFICER)
    return ref


def chain(store: Store) -> list[Any]:
    with store.engine.connect() as connection:
        return list(connection.execute(select(schema.audit_events).order_by(schema.audit_events.c.id)))


def head(store: Store) -> tuple[int, str]:
    with store.engine.connect() as connection:
        row = connection.execute(select(schema.audit_chain_head)).one()
    return row.last_id, row.last_hash


# -- an intact chain --------------------------------------------------------------------------------

def test_real_case_changes_make_one_intact_chain(service: CaseService) -> None:
    ref = build_case_history(service)
    rows = chain(service.store)
    actions = [row.action for row in rows]
    assert {"case-referred", "dsp-decision-recorded", "step-retimed", "step-completed",
            "anchor-moved"} <= set(actions)
    # Ids are given out by the chain's head: no gaps, in chain order, each row linked to the last.
    assert [row.id for row in rows] == list(range(1, len(rows) + 1))
    assert [row.prev_hash for row in rows] == [GENESIS] + [row.hash for row in rows[:-1]]
    assert head(service.store) == (rows[-1].id, rows[-1].hash)

    report = verify_audit_chain(service.store.engine)
    assert report.intact, report.first_break
    assert report.rows == len(rows)
    assert report.as_json()["head"] == {"id": rows[-1].id, "hash": rows[-1].hash}
    # The listing reads the same rows, and the case's own.
    entries = audit_entries(service.store.engine, partnership="default", case_ref=ref, limit=1000)
    assert [entry.action for entry in entries] == actions


def test_an_empty_trail_is_intact(store: Store) -> None:
    report = verify_audit_chain(store.engine)
    assert (report.intact, report.rows, head(store)) == (True, 0, (0, GENESIS))


def test_a_rolled_back_change_leaves_the_chain_as_it_was(service: CaseService) -> None:
    service.refer(referral(1), actor=OFFICER)
    before = head(service.store)

    def failed_change() -> None:
        with service.store.transaction() as session:
            add_audit_event(session=session, case_id=None, at=EXAMPLE_NOW, actor="someone",
                            via=Interface.SYSTEM, action="never-happened", detail={})
            raise RuntimeError("the change failed after its audit event")

    with pytest.raises(RuntimeError):
        failed_change()
    assert head(service.store) == before
    service.refer(referral(2), actor=OFFICER)
    rows = chain(service.store)
    assert [row.id for row in rows] == list(range(1, len(rows) + 1))
    assert "never-happened" not in {row.action for row in rows}
    assert verify_audit_chain(service.store.engine).intact


def test_audit_rows_and_the_head_are_still_guarded(service: CaseService) -> None:
    service.refer(referral(1), actor=OFFICER)
    refused = ["UPDATE audit_events SET actor = 'someone else'", "DELETE FROM audit_events",
               "DELETE FROM audit_chain_head"]
    if service.store.engine.dialect.name == "postgresql":
        refused += ["TRUNCATE audit_events", "TRUNCATE audit_chain_head"]
    for statement in refused:
        with pytest.raises(DBAPIError, match=r"append-only|never deleted"), \
                service.store.transaction() as session:
            session.execute(text(statement))
    assert verify_audit_chain(service.store.engine).intact


# -- tampering, with the triggers dropped -------------------------------------------------------------

def drop_triggers(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        connection.execute(text("DROP TRIGGER audit_events_no_update"))
        connection.execute(text("DROP TRIGGER audit_events_no_delete"))
    else:
        connection.execute(text("DROP TRIGGER audit_events_append_only ON audit_events"))


def forge(connection: Connection, row_id: int, **changes: Any) -> None:
    """Rewrite a row as someone who knows the canonical form would: its hash recomputed."""
    row = connection.execute(select(schema.audit_events).where(schema.audit_events.c.id == row_id)).one()
    fields = {"id": row.id, "case_id": row.case_id, "at": row.at, "actor": row.actor,
              "via": row.via.value, "action": row.action, "detail": row.detail,
              "prev_hash": row.prev_hash, **changes}
    forged = AuditRow.linked(**fields)
    connection.execute(schema.audit_events.update().where(schema.audit_events.c.id == row_id)
                       .values(actor=forged.actor, prev_hash=forged.prev_hash, hash=forged.hash))


def swap(connection: Connection, first: int, second: int) -> None:
    for old, new in ((first, -1), (second, first), (-1, second)):
        connection.execute(text("UPDATE audit_events SET id = :new WHERE id = :old"),
                           {"old": old, "new": new})


def append_past_the_head(connection: Connection, last: int) -> None:
    previous = connection.execute(select(schema.audit_events.c.hash)
                                  .where(schema.audit_events.c.id == last)).scalar_one()
    row = AuditRow.linked(id=last + 1, case_id=None, at=EXAMPLE_NOW, actor="intruder", via="cli",
                          action="case-referred", detail={}, prev_hash=previous)
    connection.execute(schema.audit_events.insert().values(
        id=row.id, case_id=None, at=row.at, actor=row.actor, via=Interface.CLI, action=row.action,
        detail=row.detail, prev_hash=row.prev_hash, hash=row.hash))


Tamper = Callable[[Connection, int], None]


def sql(*statements: str) -> Tamper:
    """Statements run as written, `:last` standing for the last row's id."""
    def run(connection: Connection, last: int) -> None:
        for statement in statements:
            connection.execute(text(statement), {"last": last} if ":last" in statement else {})

    return run


# Each: what is done (given the last row's id), and the row and the problem verify must name.
TAMPERING: dict[str, tuple[Tamper, Callable[[int], int], Problem]] = {
    "actor changed": (sql("UPDATE audit_events SET actor = 'x' WHERE id = 3"),
                      lambda _last: 3, Problem.CONTENT_CHANGED),
    "detail changed": (sql("UPDATE audit_events SET detail = '{\"step\": \"rr-meeting\"}' WHERE id = 5"),
                       lambda _last: 5, Problem.CONTENT_CHANGED),
    "action changed": (sql("UPDATE audit_events SET action = 'step-opened' WHERE id = 4"),
                       lambda _last: 4, Problem.CONTENT_CHANGED),
    "middle row deleted": (sql("DELETE FROM audit_events WHERE id = 4"),
                           lambda _last: 4, Problem.ROW_MISSING),
    "first row deleted": (sql("DELETE FROM audit_events WHERE id = 1"),
                          lambda _last: 1, Problem.ROW_MISSING),
    "last row deleted": (sql("DELETE FROM audit_events WHERE id = :last"),
                         lambda last: last, Problem.ROW_MISSING),
    "two rows swapped": (lambda c, _last: swap(c, 3, 4), lambda _last: 3, Problem.OUT_OF_ORDER),
    "a row moved to the end": (sql("UPDATE audit_events SET id = :last + 1 WHERE id = 2"),
                               lambda _last: 3, Problem.OUT_OF_ORDER),
    "a link forged, hash recomputed": (lambda c, _last: forge(c, 4, prev_hash="f" * 64),
                                       lambda _last: 4, Problem.BAD_LINK),
    "a row appended around the head": (append_past_the_head, lambda last: last + 1, Problem.BAD_LINK),
    "the newest row rewritten, hash recomputed": (lambda c, last: forge(c, last, actor="someone else"),
                                                  lambda last: last, Problem.CONTENT_CHANGED),
    "a later change and an earlier deletion": (sql("UPDATE audit_events SET actor = 'x' WHERE id = 6",
                                                   "DELETE FROM audit_events WHERE id = 2"),
                                               lambda _last: 2, Problem.ROW_MISSING),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_verify_names_the_first_bad_row(service: CaseService, case: str) -> None:
    build_case_history(service)
    last = len(chain(service.store))
    assert last >= 8
    tamper, bad_row, problem = TAMPERING[case]
    with service.store.engine.begin() as connection:
        drop_triggers(connection)
        tamper(connection, last)

    report = verify_audit_chain(service.store.engine)
    assert not report.intact
    assert report.first_break is not None
    assert (report.first_break.id, report.first_break.problem) == (bad_row(last), problem), \
        report.first_break.message
    assert f"row {bad_row(last)}" in report.first_break.message


def test_a_missing_head_is_reported(service: CaseService) -> None:
    service.refer(referral(1), actor=OFFICER)
    with service.store.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.execute(text("DROP TRIGGER audit_chain_head_no_delete"))
        else:
            connection.execute(text("DROP TRIGGER audit_chain_head_kept ON audit_chain_head"))
        connection.execute(text("DELETE FROM audit_chain_head"))
    report = verify_audit_chain(service.store.engine)
    assert report.first_break is not None
    assert report.first_break.problem is Problem.BAD_LINK
    assert "head" in report.first_break.message
    # And nothing more is written around it: a change that needs an audit event is refused whole.
    with pytest.raises(SbuError, match=r"chain's head is missing"):
        service.refer(referral(2), actor=OFFICER)
    assert len(chain(service.store)) == 2


# -- concurrent writers on PostgreSQL -------------------------------------------------------------

@pytest.fixture
def pg_service(tmp_path: Path) -> Iterator[CaseService]:
    for url in postgres_schema_url():
        store = Store(url).migrate()
        try:
            yield CaseService(store=store, settings=Settings(data_dir=tmp_path, database_url=url),
                              clock=FixedClock(EXAMPLE_NOW))
        finally:
            store.dispose()


@pytest.mark.postgres
def test_concurrent_writers_keep_one_linear_chain(pg_service: CaseService) -> None:
    threads_count, cases_each = 8, 3
    start = threading.Barrier(threads_count)
    errors: list[BaseException] = []

    def officer(number: int) -> None:
        try:
            start.wait()
            for n in range(cases_each):
                ref = pg_service.refer(referral(number * 100 + n), actor=OFFICER).case_ref
                pg_service.decide(ref, decision(), actor=OFFICER)
        except BaseException as error:  # noqa: BLE001 - a thread's failure is reported below
            errors.append(error)

    threads = [threading.Thread(target=officer, args=(number,)) for number in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors

    rows = chain(pg_service.store)
    # Every case's events are there, ids are gapless and each row links to the one before.
    with pg_service.store.engine.connect() as connection:
        cases = connection.execute(select(func.count()).select_from(schema.cases)).scalar_one()
    assert cases == threads_count * cases_each
    assert sum(row.action == "case-referred" for row in rows) == cases
    assert [row.id for row in rows] == list(range(1, len(rows) + 1))
    assert [row.prev_hash for row in rows] == [GENESIS] + [row.hash for row in rows[:-1]]
    assert all(row_hash(AuditRow(**row._asdict() | {"via": row.via.value})) == row.hash for row in rows)
    assert verify_audit_chain(pg_service.store.engine).intact


@pytest.mark.postgres
def test_the_chain_lock_holds_back_only_other_audit_writers(pg_service: CaseService) -> None:
    ref = pg_service.refer(referral(1), actor=OFFICER).case_ref
    store = pg_service.store
    holding, release, second_done = threading.Event(), threading.Event(), threading.Event()

    def write(action: str, *, hold: bool) -> None:
        with store.transaction() as session:
            add_audit_event(session=session, case_id=None, at=EXAMPLE_NOW, actor="test",
                            via=Interface.SYSTEM, action=action, detail={})
            if hold:
                holding.set()
                release.wait(30)
        if not hold:
            second_done.set()

    first = threading.Thread(target=write, args=("first",), kwargs={"hold": True})
    first.start()
    assert holding.wait(10)
    try:
        # While one transaction holds the chain's head: reads, the check, and writes that record no
        # audit event go ahead at once.
        began = time.perf_counter()
        pg_service.case_view(ref)
        assert verify_audit_chain(store.engine).intact  # it sees the chain as committed
        audit_entries(store.engine, partnership="default", case_ref=None, limit=10)
        pg_service.set_run(ref, "case", "11111111-1111-1111-1111-111111111111")
        assert time.perf_counter() - began < 5
        # Another audit writer waits for it.
        second = threading.Thread(target=write, args=("second",), kwargs={"hold": False})
        second.start()
        assert not second_done.wait(1.0)
    finally:
        release.set()
    first.join(10)
    second.join(10)
    assert second_done.is_set()
    rows = chain(store)
    assert [row.action for row in rows[-2:]] == ["first", "second"]
    assert rows[-1].prev_hash == rows[-2].hash
    assert verify_audit_chain(store.engine).intact


@pytest.mark.postgres
def test_an_audit_writer_never_deadlocks_with_a_change_holding_its_case(pg_service: CaseService) -> None:
    """A change holds its case FOR UPDATE and then writes its audit events; an audit event about the
    same case written meanwhile from elsewhere (a requeued email's, say) must wait for the case
    before it takes the chain's head, not hold the head while it waits for the case."""
    ref = pg_service.refer(referral(1), actor=OFFICER).case_ref
    store = pg_service.store
    with store.engine.connect() as connection:
        case_id = connection.execute(
            select(schema.cases.c.id).where(schema.cases.c.case_ref == ref)).scalar_one()
    case_locked = threading.Event()
    errors: list[BaseException] = []

    def change_holding_the_case() -> None:
        try:
            with store.transaction() as session:
                repo.find_case(session=session, partnership="default", case_ref=ref, for_update=True)
                case_locked.set()
                time.sleep(0.5)  # the other writer arrives while the case is held
                add_audit_event(session=session, case_id=case_id, at=EXAMPLE_NOW, actor="officer",
                                via=Interface.CLI, action="change", detail={})
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    changer = threading.Thread(target=change_holding_the_case)
    changer.start()
    assert case_locked.wait(10)
    try:
        with store.transaction() as session:
            add_audit_event(session=session, case_id=case_id, at=EXAMPLE_NOW, actor="system",
                            via=Interface.SYSTEM, action="elsewhere", detail={})
    finally:
        changer.join(10)
    assert not errors
    assert [row.action for row in chain(store)[-2:]] == ["change", "elsewhere"]
    assert verify_audit_chain(store.engine).intact
