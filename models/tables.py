"""The case store's ORM classes, mapped onto the Core tables of `models.schema`. Kept apart from
the rules: nothing here decides. The columns, types and constraints live in `models.schema`; the
annotations here type the attributes, and the relationships are the ORM's own.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import DeclarativeBase, Mapped, relationship

from models import schema
from models.enums import (
    AbuseOrNeglect,
    Agency,
    Anchor,
    CasePath,
    CaseStatus,
    Category,
    Interface,
    ReviewRoute,
    StepState,
    TimerKind,
    TimerState,
)
from models.schema import NAMING_CONVENTION, OutboxStatus, StrEnumColumn, UtcDateTime

__all__ = [
    "NAMING_CONVENTION", "AuditChainHead", "AuditEvent", "Base", "Case", "CaseAgency", "CaseAnchor",
    "CaseChild", "CaseRun", "CaseSequence", "Decision", "Item", "Meeting", "OutboxMessage", "OutboxStatus",
    "Record", "StrEnumColumn", "Timer", "UtcDateTime",
]


class Base(DeclarativeBase):
    metadata = schema.metadata


class CaseSequence(Base):
    __table__ = schema.case_sequences
    partnership: Mapped[str]
    prefix: Mapped[str]
    year: Mapped[int]
    last: Mapped[int]


class Case(Base):
    __table__ = schema.cases
    id: Mapped[int]
    case_ref: Mapped[str]
    partnership: Mapped[str]
    referring_agency: Mapped[Agency]
    external_ref: Mapped[str]
    fingerprint: Mapped[str]
    category: Mapped[Category]
    abuse_or_neglect: Mapped[AbuseOrNeglect]
    status: Mapped[CaseStatus]
    path: Mapped[CasePath | None]
    incident_on: Mapped[date]
    la_aware_on: Mapped[date]
    referred_at: Mapped[datetime]
    referred_on: Mapped[date]
    review: Mapped[ReviewRoute | None]
    created_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]

    children: Mapped[list[CaseChild]] = relationship(back_populates="case", order_by="CaseChild.position")
    agencies: Mapped[list[CaseAgency]] = relationship(order_by="CaseAgency.agency")
    items: Mapped[list[Item]] = relationship(back_populates="case", order_by="Item.id")
    runs: Mapped[list[CaseRun]] = relationship(order_by="CaseRun.process")


class CaseAnchor(Base):
    __table__ = schema.case_anchors
    case_id: Mapped[int]
    anchor: Mapped[Anchor]
    anchor_on: Mapped[date]


class CaseChild(Base):
    __table__ = schema.case_children
    id: Mapped[int]
    case_id: Mapped[int]
    position: Mapped[int]
    la_record_id: Mapped[str]
    age_years: Mapped[int]
    looked_after: Mapped[bool]
    care_leaver: Mapped[bool]
    case: Mapped[Case] = relationship(back_populates="children")


class CaseAgency(Base):
    __table__ = schema.case_agencies
    case_id: Mapped[int]
    agency: Mapped[Agency]


class Item(Base):
    __table__ = schema.items
    id: Mapped[int]
    case_id: Mapped[int]
    process: Mapped[str]
    step: Mapped[str]
    subject: Mapped[str]
    title: Mapped[str]
    state: Mapped[StepState]
    anchor: Mapped[Anchor]
    anchor_on: Mapped[date]
    due_on: Mapped[date]
    rule: Mapped[str]
    due_set_by_person: Mapped[bool]
    opened_at: Mapped[datetime]
    completed_on: Mapped[date | None]
    completed_at: Mapped[datetime | None]
    completed_by: Mapped[str | None]
    completed_via: Mapped[Interface | None]
    details: Mapped[dict[str, Any] | None]
    agency: Mapped[Agency | None]
    case: Mapped[Case] = relationship(back_populates="items")


class CaseRun(Base):
    __table__ = schema.case_runs
    case_id: Mapped[int]
    process: Mapped[str]
    flow_run_id: Mapped[str | None]
    started_at: Mapped[datetime]


class Decision(Base):
    __table__ = schema.decisions
    id: Mapped[int]
    case_id: Mapped[int]
    sin: Mapped[bool]
    rapid_review: Mapped[bool]
    path: Mapped[CasePath]
    rationale: Mapped[str]
    sign_off: Mapped[dict[str, Any]]
    decided_on: Mapped[date]
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str]
    recorded_via: Mapped[Interface]


class Record(Base):
    __table__ = schema.records
    id: Mapped[int]
    case_id: Mapped[int]
    kind: Mapped[str]
    process: Mapped[str]
    subject: Mapped[str]
    form_values: Mapped[dict[str, Any]]
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str]
    recorded_via: Mapped[Interface]


class Meeting(Base):
    __table__ = schema.meetings
    case_id: Mapped[int]
    starts_at: Mapped[datetime]
    minutes: Mapped[int]
    place: Mapped[str]
    sequence: Mapped[int]
    arranged_at: Mapped[datetime]


class AuditEvent(Base):
    __table__ = schema.audit_events
    id: Mapped[int]
    case_id: Mapped[int | None]
    at: Mapped[datetime]
    actor: Mapped[str]
    via: Mapped[Interface]
    action: Mapped[str]
    detail: Mapped[dict[str, Any]]
    prev_hash: Mapped[str]
    hash: Mapped[str]


class AuditChainHead(Base):
    __table__ = schema.audit_chain_head
    id: Mapped[int]
    last_id: Mapped[int]
    last_hash: Mapped[str]


class OutboxMessage(Base):
    __table__ = schema.outbox
    id: Mapped[int]
    case_id: Mapped[int | None]
    dedup_key: Mapped[str]
    message_id: Mapped[str]
    event: Mapped[str]
    case_ref: Mapped[str | None]
    recipients: Mapped[dict[str, Any]]
    subject: Mapped[str]
    body_text: Mapped[str]
    body_html: Mapped[str | None]
    attachments: Mapped[dict[str, Any] | None]
    status: Mapped[OutboxStatus]
    attempts: Mapped[int]
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None]
    requeues: Mapped[int]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class Timer(Base):
    __table__ = schema.timers
    id: Mapped[int]
    case_id: Mapped[int]
    item_id: Mapped[int]
    kind: Mapped[TimerKind]
    sequence: Mapped[int]
    fire_at: Mapped[datetime]
    key: Mapped[str]
    state: Mapped[TimerState]
    flow_run_id: Mapped[str | None]
    fired_at: Mapped[datetime | None]
    item: Mapped[Item] = relationship()
