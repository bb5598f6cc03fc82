"""The case store's tables (SQLAlchemy 2.0, typed). Kept apart from the rules: nothing here decides.

The store is the single source of truth; Prefect only runs and shows the work. Audit events are
append-only (the migration adds triggers that refuse UPDATE and DELETE on both SQLite and PostgreSQL).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from models.enums import (
    AbuseOrNeglect,
    Agency,
    CasePath,
    CaseStatus,
    Category,
    Interface,
    StepId,
    StepState,
    TimerKind,
    TimerState,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware timestamps on every backend: stored in UTC, read back aware. SQLite keeps no
    offset, and a naive timestamp would be refused by the calendar (rightly)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive timestamps are not stored")
        moment: datetime = value
        return moment.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class StrEnumColumn(TypeDecorator[StrEnum]):
    """A StrEnum stored as its plain string: readable in SQL, and a new member needs no ALTER TYPE
    on PostgreSQL. Values read back are enum members again, so `is` comparisons hold."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[StrEnum]) -> None:
        super().__init__(max(len(member.value) for member in enum) + 8)
        self.enum = enum

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> StrEnum | None:
        return None if value is None else self.enum(value)


def _enum(enum: type[StrEnum]) -> StrEnumColumn:
    return StrEnumColumn(enum)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JSON}


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"


class CaseSequence(Base):
    """The last sequence number given out per partnership, prefix and year."""

    __tablename__ = "case_sequences"
    partnership: Mapped[str] = mapped_column(String(32), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(8), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (UniqueConstraint("partnership", "referring_agency", "external_ref",
                                       name="uq_cases_referral"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_ref: Mapped[str] = mapped_column(String(32), unique=True)
    partnership: Mapped[str] = mapped_column(String(32), index=True)
    referring_agency: Mapped[Agency] = mapped_column(_enum(Agency))
    external_ref: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))
    category: Mapped[Category] = mapped_column(_enum(Category))
    abuse_or_neglect: Mapped[AbuseOrNeglect] = mapped_column(_enum(AbuseOrNeglect))
    status: Mapped[CaseStatus] = mapped_column(_enum(CaseStatus))
    path: Mapped[CasePath | None] = mapped_column(_enum(CasePath))
    # Every anchor date is stored on its own (DESIGN.md §2).
    incident_on: Mapped[date] = mapped_column(Date)
    la_aware_on: Mapped[date] = mapped_column(Date)
    referred_at: Mapped[datetime]
    referred_on: Mapped[date] = mapped_column(Date)
    decided_on: Mapped[date | None] = mapped_column(Date)
    sin_submitted_on: Mapped[date | None] = mapped_column(Date)
    notified_on: Mapped[date | None] = mapped_column(Date)
    meeting_on: Mapped[date | None] = mapped_column(Date)
    cspr_commissioned_on: Mapped[date | None] = mapped_column(Date)
    planned_publication_on: Mapped[date | None] = mapped_column(Date)
    flow_run_id: Mapped[str | None] = mapped_column(String(36))
    rapid_review_run_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]

    children: Mapped[list[CaseChild]] = relationship(back_populates="case", order_by="CaseChild.position")
    agencies: Mapped[list[CaseAgency]] = relationship(order_by="CaseAgency.agency")
    steps: Mapped[list[Step]] = relationship(back_populates="case", order_by="Step.id")


class CaseChild(Base):
    __tablename__ = "case_children"
    __table_args__ = (UniqueConstraint("case_id", "la_record_id", name="uq_case_children_record"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    la_record_id: Mapped[str] = mapped_column(String(32))
    age_years: Mapped[int] = mapped_column(Integer)
    looked_after: Mapped[bool] = mapped_column(Boolean)
    care_leaver: Mapped[bool] = mapped_column(Boolean)
    case: Mapped[Case] = relationship(back_populates="children")


class CaseAgency(Base):
    __tablename__ = "case_agencies"
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    agency: Mapped[Agency] = mapped_column(_enum(Agency), primary_key=True)
    responded_on: Mapped[date | None] = mapped_column(Date)


class Step(Base):
    """One step of one case: every step is a row with a due date (DESIGN.md §6)."""

    __tablename__ = "steps"
    __table_args__ = (UniqueConstraint("case_id", "step", name="uq_steps_case_step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    step: Mapped[StepId] = mapped_column(_enum(StepId))
    state: Mapped[StepState] = mapped_column(_enum(StepState), index=True)
    anchor_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date, index=True)
    rule: Mapped[str] = mapped_column(String(120))
    opened_at: Mapped[datetime]
    completed_on: Mapped[date | None] = mapped_column(Date)
    completed_at: Mapped[datetime | None]
    completed_by: Mapped[str | None] = mapped_column(String(80))
    completed_via: Mapped[Interface | None] = mapped_column(_enum(Interface))
    details: Mapped[dict[str, Any] | None]
    case: Mapped[Case] = relationship(back_populates="steps")


class Decision(Base):
    """The DSPs' decision. One per case: a second, conflicting one is refused."""

    __tablename__ = "decisions"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), unique=True)
    sin: Mapped[bool] = mapped_column(Boolean)
    rapid_review: Mapped[bool] = mapped_column(Boolean)
    path: Mapped[CasePath] = mapped_column(_enum(CasePath))
    rationale: Mapped[str] = mapped_column(Text)
    dsps_present: Mapped[dict[str, Any]]
    decided_on: Mapped[date] = mapped_column(Date)
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(String(80))
    recorded_via: Mapped[Interface] = mapped_column(_enum(Interface))


class AuditEvent(Base):
    """Who did what, when, from which interface. Rows are never updated or deleted."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(80))
    via: Mapped[Interface] = mapped_column(_enum(Interface))
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]]


class OutboxMessage(Base):
    """An email queued in the same transaction as the change that caused it."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    event: Mapped[str] = mapped_column(String(40))
    # The case reference (never personal data) so listings and dead-letter alerts name the case
    # without a join; None for messages about no single case, such as the daily digest.
    case_ref: Mapped[str | None] = mapped_column(String(32))
    recipients: Mapped[dict[str, Any]]
    subject: Mapped[str] = mapped_column(String(250))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[dict[str, Any] | None]
    status: Mapped[OutboxStatus] = mapped_column(_enum(OutboxStatus), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(String(300))
    # How many times an operator has requeued this dead letter: part of its alert's dedup key, so
    # a message that dies again after a retry is reported again.
    requeues: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class Timer(Base):
    """A durable deadline timer: a deadline-check run scheduled in Prefect at `fire_at`."""

    __tablename__ = "timers"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    step: Mapped[StepId] = mapped_column(_enum(StepId))
    kind: Mapped[TimerKind] = mapped_column(_enum(TimerKind))
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    fire_at: Mapped[datetime] = mapped_column(index=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    state: Mapped[TimerState] = mapped_column(_enum(TimerState), index=True)
    flow_run_id: Mapped[str | None] = mapped_column(String(36))
    fired_at: Mapped[datetime | None]
