"""Reads and writes of the case store through the ORM. Every function takes the caller's session
(keyword `session`) and never commits: the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from models import schema
from models.audit import AuditRow
from models.enums import Agency, CaseStatus, Interface, TimerKind, TimerState, known_step
from models.errors import SbuError
from models.tables import Case, CaseRun, CaseSequence, Item, Timer


@dataclass(frozen=True, slots=True)
class TimerView:
    """A timer as the bridge schedules it in Prefect."""

    case_ref: str
    key: str
    step: str
    subject: str
    kind: TimerKind
    sequence: int
    fire_at: datetime
    state: TimerState
    flow_run_id: str | None


# -- cases ----------------------------------------------------------------------------------------

def find_case(*, session: Session, partnership: str, case_ref: str, for_update: bool = False) -> Case | None:
    query = select(Case).where(Case.case_ref == case_ref, Case.partnership == partnership)
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def lock_case(*, session: Session, case_id: int) -> Case:
    """The case, locked against every other change until the caller's transaction ends."""
    return session.scalars(select(Case).where(Case.id == case_id).with_for_update()).one()


def find_referral(*, session: Session, partnership: str, agency: Agency, external_ref: str) -> Case | None:
    return session.scalars(select(Case).where(Case.partnership == partnership,
                                              Case.referring_agency == agency,
                                              Case.external_ref == external_ref)).one_or_none()


def next_case_ref(*, session: Session, partnership: str, prefix: str, year: int) -> str:
    """The next case reference of the partnership's year: `SR-2026-0001`, `SR-2026-0002`, ..."""
    sequence = session.get(CaseSequence, (partnership, prefix, year), with_for_update=True)
    if sequence is None:
        sequence = CaseSequence(partnership=partnership, prefix=prefix, year=year, last=0)
        session.add(sequence)
    sequence.last += 1
    return f"{prefix}-{year}-{sequence.last:04d}"


# -- items ----------------------------------------------------------------------------------------

def find_item(*, session: Session, case_id: int, step: str, subject: str) -> Item | None:
    return session.scalars(select(Item).where(Item.case_id == case_id, Item.step == step,
                                              Item.subject == subject)).one_or_none()


def get_item(*, session: Session, case_id: int, step: str, subject: str) -> Item:
    item = find_item(session=session, case_id=case_id, step=step, subject=subject)
    if item is None:
        raise LookupError(f"no item {step} {subject!r} on case {case_id}")
    return item


# -- timers ---------------------------------------------------------------------------------------

def find_timer(*, session: Session, key: str, for_update: bool = False) -> Timer | None:
    query = select(Timer).where(Timer.key == key)
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def scheduled_timers_of(*, session: Session, item_id: int) -> list[Timer]:
    return list(session.scalars(select(Timer).where(Timer.item_id == item_id,
                                                    Timer.state == TimerState.SCHEDULED)).all())


def timers(*, session: Session, partnership: str, case_ref: str | None,
           states: Iterable[TimerState]) -> list[TimerView]:
    query = (select(Timer, Item.step, Item.subject, Case.case_ref)
             .join(Item, Item.id == Timer.item_id).join(Case, Case.id == Timer.case_id)
             .where(Timer.state.in_(list(states)), Case.partnership == partnership)
             .order_by(Timer.fire_at, Timer.id))
    if case_ref is not None:
        query = query.where(Case.case_ref == case_ref)
    return [TimerView(case_ref=ref, key=t.key, step=known_step(step), subject=subject, kind=t.kind,
                      sequence=t.sequence, fire_at=t.fire_at, state=t.state, flow_run_id=t.flow_run_id)
            for t, step, subject, ref in session.execute(query).all()]


# -- runs -----------------------------------------------------------------------------------------

def find_run(*, session: Session, case_id: int, process: str) -> CaseRun | None:
    return session.get(CaseRun, (case_id, process))


def untold_timers(*, session: Session, partnership: str) -> bool:
    """Whether a timer waits to be scheduled in Prefect, or a cancelled one's run to be cancelled."""
    untold = (select(Timer.id).join(Case, Case.id == Timer.case_id)
              .where(Case.partnership == partnership,
                     ((Timer.state == TimerState.SCHEDULED) & Timer.flow_run_id.is_(None))
                     | ((Timer.state == TimerState.CANCELLED) & Timer.flow_run_id.is_not(None)))
              .limit(1))
    return session.execute(untold).first() is not None


def cases_with_untold_runs(*, session: Session, partnership: str) -> list[str]:
    """Open cases running a process that Prefect has no run for yet."""
    return list(session.scalars(
        select(Case.case_ref).join(CaseRun, CaseRun.case_id == Case.id)
        .where(Case.partnership == partnership, Case.status != CaseStatus.CLOSED,
               CaseRun.flow_run_id.is_(None))
        .distinct().order_by(Case.case_ref)).all())


def expected_runs(*, session: Session, partnership: str) -> list[tuple[str, CaseStatus, str, str | None]]:
    """Every flow run the store expects Prefect to have, in one query: each case's reference and
    status with each process it runs and that process's run (None while Prefect is untold)."""
    return [(row.case_ref, row.status, row.process, row.flow_run_id) for row in session.execute(
        select(Case.case_ref, Case.status, CaseRun.process, CaseRun.flow_run_id)
        .join(CaseRun, CaseRun.case_id == Case.id)
        .where(Case.partnership == partnership).order_by(Case.case_ref, CaseRun.process))]


# -- audit ----------------------------------------------------------------------------------------

def add_audit_event(*, session: Session, case_id: int | None, at: datetime, actor: str, via: Interface,
                    action: str, detail: Mapping[str, Any]) -> None:
    """Append one audit row to the chain, in the caller's transaction (never committed here).

    Audit rows are only ever added (the database refuses UPDATE and DELETE on them), and each is
    linked by hash to the row before it (`models.audit`). The link is taken from the chain's head,
    which this locks until the caller's transaction ends: a concurrent writer waits there and then
    links its rows after these, so the chain stays one line. Write audit events last in a unit of
    work, and a change's several events together (`add_audit_events`), as the case service does,
    so that the lock is held no longer than the commit needs.
    """
    add_audit_events(session=session, case_id=case_id, at=at, actor=actor, via=via,
                     events=[(action, detail)])


def add_audit_events(*, session: Session, case_id: int | None, at: datetime, actor: str, via: Interface,
                     events: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
    """Append one audit row per `(action, detail)`, in order, for one change by one actor: as
    `add_audit_event`, with one lock of the chain's head, one insert and one update of the head for
    them all, whatever their number."""
    if not events:
        return
    # The head must be the last lock the transaction takes: then no one holding it ever waits for
    # another lock, so it can never close a cycle with the row locks of the changes being recorded
    # (a deadlock), and other writers wait on it for as short a time as can be. So everything this
    # transaction has changed is written first, and the case row the new rows' foreign key will
    # check is locked first too (FOR KEY SHARE, what that check takes; a no-op on SQLite): else a
    # writer holding the head could wait for a change holding the case FOR UPDATE, which waits
    # for the head.
    session.flush()
    if case_id is not None:
        cases = schema.cases
        session.execute(select(cases.c.id).where(cases.c.id == case_id)
                        .with_for_update(read=True, key_share=True))
    head = schema.audit_chain_head
    # One statement both locks the head (a row lock on PostgreSQL, the write lock on SQLite) and
    # gives out the ids; an id is hashed, so it must be known before its row is written.
    advanced = session.execute(update(head).where(head.c.id == 1).values(last_id=head.c.last_id + len(events))
                               .returning(head.c.last_id, head.c.last_hash)).one_or_none()
    if advanced is None:
        raise SbuError("the audit chain's head is missing, so no audit event can be written; "
                       "run `sbu audit verify`")
    rows: list[AuditRow] = []
    prev_hash: str = advanced.last_hash
    for offset, (action, detail) in enumerate(events, start=advanced.last_id - len(events) + 1):
        rows.append(AuditRow.linked(id=offset, case_id=case_id, at=at, actor=actor, via=via.value,
                                    action=action, detail=detail, prev_hash=prev_hash))
        prev_hash = rows[-1].hash
    session.execute(insert(schema.audit_events), [
        {"id": row.id, "case_id": row.case_id, "at": row.at, "actor": row.actor, "via": via,
         "action": row.action, "detail": row.detail, "prev_hash": row.prev_hash, "hash": row.hash}
        for row in rows])
    session.execute(update(head).where(head.c.id == 1).values(last_hash=prev_hash))
