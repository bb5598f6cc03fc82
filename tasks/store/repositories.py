"""Reads and writes of the case store through the ORM. Every function takes the caller's session
(keyword `session`) and never commits: the caller owns the transaction (STYLE.md, after polar)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.enums import Agency, CaseStatus, Interface, TimerKind, TimerState, known_step
from models.tables import AuditEvent, Case, CaseRun, CaseSequence, Item, Timer


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


# -- audit ----------------------------------------------------------------------------------------

def add_audit_event(*, session: Session, case_id: int | None, at: datetime, actor: str, via: Interface,
                    action: str, detail: dict[str, Any]) -> None:
    """Audit rows are only ever added: the database refuses UPDATE and DELETE on them."""
    session.add(AuditEvent(case_id=case_id, at=at, actor=actor, via=via, action=action, detail=detail))
