"""The case store's tables as SQLAlchemy Core `Table`s: the one definition of the schema.

Kept apart from the ORM classes in `models.tables`, which map onto these tables, because the
queries that only read (`sbu status`, `sbu cases`) are answered from here with SQLAlchemy Core and
never import the ORM: that import and its mapping are about a fifth of what `sbu status` costs,
and it has half a second in all. `tests/tasks/store/test_schema.py` checks these tables against
the migrations, column by column.

The store is the single source of truth; Prefect only runs and shows the work. Audit events are
append-only (the migrations add triggers that refuse UPDATE and DELETE on both SQLite and
PostgreSQL) and chained by hash (`models.audit`), so that a change made around the triggers shows.

Each dated obligation of a case is a row of `items` (a step, or one agency's or one action's part
of one), each timer belongs to an item, and each process a case runs is a row of `case_runs` with
its flow run. Each date of a case its clocks count from is a row of `case_anchors`. Step ids,
process ids and anchor ids are plain strings, so a process added to the registry needs no
migration.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect

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


class AnchorColumn(TypeDecorator[Anchor]):
    """An anchor's id (`models.enums.Anchor`), stored as its plain string and read back as an
    `Anchor`. A string, not an enum, since a process may declare anchors of its own."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else Anchor(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> Anchor | None:
        return None if value is None else Anchor(value)


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"


metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _required(name: str, kind: Any, **options: Any) -> Column[Any]:
    return Column(name, kind, nullable=False, **options)


def _optional(name: str, kind: Any, **options: Any) -> Column[Any]:
    return Column(name, kind, nullable=True, **options)


def _id() -> Column[int]:
    return Column("id", Integer, primary_key=True)


def _case_id(*, nullable: bool = False, **options: Any) -> Column[int]:
    return Column("case_id", Integer, ForeignKey("cases.id"), nullable=nullable, **options)


# The last sequence number given out per partnership, prefix and year.
case_sequences = Table(
    "case_sequences", metadata,
    Column("partnership", String(32), primary_key=True),
    Column("prefix", String(8), primary_key=True),
    Column("year", Integer, primary_key=True),
    _required("last", Integer),
)

cases = Table(
    "cases", metadata,
    _id(),
    _required("case_ref", String(32), unique=True),
    _required("partnership", String(32), index=True),
    _required("referring_agency", StrEnumColumn(Agency)),
    _required("external_ref", String(64)),
    _required("fingerprint", String(64)),
    _required("category", StrEnumColumn(Category)),
    _required("abuse_or_neglect", StrEnumColumn(AbuseOrNeglect)),
    _required("status", StrEnumColumn(CaseStatus)),
    _optional("path", StrEnumColumn(CasePath)),
    # The referral's dates as referred, kept as they came. The clocks count from the case's
    # anchors (`case_anchors`), where the referral's two dates are the first rows and may be
    # corrected with a reason; these stay what the referral said.
    _required("incident_on", Date),
    _required("la_aware_on", Date),
    _required("referred_at", UtcDateTime()),
    _required("referred_on", Date),
    # The route of the case's review: the Rapid Review's recommendation, or the Panel's answer to it.
    _optional("review", StrEnumColumn(ReviewRoute)),
    _required("created_at", UtcDateTime()),
    _optional("closed_at", UtcDateTime()),
    UniqueConstraint("partnership", "referring_agency", "external_ref", name="uq_cases_referral"),
)

# Each date of a case its clocks count from (`models.anchors`): one row per anchor the case has
# reached, the procedure's own and any a process declares, so a process's anchor needs no
# migration. Every anchor date is stored on its own.
case_anchors = Table(
    "case_anchors", metadata,
    Column("case_id", Integer, ForeignKey("cases.id"), primary_key=True),
    Column("anchor", AnchorColumn(), primary_key=True),
    _required("anchor_on", Date),
)

case_children = Table(
    "case_children", metadata,
    _id(),
    _case_id(index=True),
    _required("position", Integer),
    _required("la_record_id", String(32)),
    _required("age_years", Integer),
    _required("looked_after", Boolean),
    _required("care_leaver", Boolean),
    UniqueConstraint("case_id", "la_record_id", name="uq_case_children_record"),
)

# The agencies the referral names as involved; each one's part of a step is an item of its own.
case_agencies = Table(
    "case_agencies", metadata,
    Column("case_id", Integer, ForeignKey("cases.id"), primary_key=True),
    Column("agency", StrEnumColumn(Agency), primary_key=True),
)

# One dated obligation of one case: a step of a process, or one subject's part of one (an agency's
# information, an IMR, an action). `subject` is '' for a step the case has once.
items = Table(
    "items", metadata,
    _id(),
    _case_id(index=True),
    _required("process", String(40)),
    _required("step", String(40)),
    _required("subject", String(40), default=""),
    _required("title", String(120)),
    _required("state", StrEnumColumn(StepState), index=True),
    _required("anchor", AnchorColumn()),
    _required("anchor_on", Date),
    _required("due_on", Date, index=True),
    _required("rule", String(120)),
    # The due date is one a person gave when the item opened (the panel's date for the IMRs, an
    # action's), not counted from its anchor: it stays when the anchor moves.
    _required("due_set_by_person", Boolean, server_default=false()),
    _required("opened_at", UtcDateTime()),
    _optional("completed_on", Date),
    _optional("completed_at", UtcDateTime()),
    _optional("completed_by", String(80)),
    _optional("completed_via", StrEnumColumn(Interface)),
    # Structured values only (a reference, a recommendation, the sections an IMR lacks): free text
    # and names are in `records`.
    _optional("details", JSON),
    # The agency the item is owed by (its information, its IMR, its action), if any.
    _optional("agency", StrEnumColumn(Agency)),
    UniqueConstraint("case_id", "step", "subject", name="uq_items_case_step_subject"),
)

# Each process a case runs, and its flow run in Prefect once it has one (docs/architecture.md).
case_runs = Table(
    "case_runs", metadata,
    Column("case_id", Integer, ForeignKey("cases.id"), primary_key=True),
    Column("process", String(40), primary_key=True),
    _optional("flow_run_id", String(36)),
    _required("started_at", UtcDateTime()),
)

# The DSPs' decision. One per case: a second, conflicting one is refused.
decisions = Table(
    "decisions", metadata,
    _id(),
    _case_id(unique=True),
    _required("sin", Boolean),
    _required("rapid_review", Boolean),
    _required("path", StrEnumColumn(CasePath)),
    _required("rationale", Text),
    # Each DSP role's signature: {"sign_off": [{"role", "name", "deputy"}, ...]}.
    _required("sign_off", JSON),
    _required("decided_on", Date),
    _required("recorded_at", UtcDateTime()),
    _required("recorded_by", String(80)),
    _required("recorded_via", StrEnumColumn(Interface)),
)

# Every form a person submitted and the store accepted, as submitted (free text and names included):
# the one place a rationale, the learning or an action's wording is kept. Its counts per kind are
# how a waiting dashboard form knows something new was recorded (`models.registry.Wait`).
records = Table(
    "records", metadata,
    _id(),
    _case_id(index=True),
    _required("kind", String(40)),
    _required("process", String(40)),
    _required("subject", String(40), default=""),
    _required("form_values", JSON),
    _required("recorded_at", UtcDateTime()),
    _required("recorded_by", String(80)),
    _required("recorded_via", StrEnumColumn(Interface)),
)

# The Rapid Review meeting as last arranged; `sequence` counts the invitation's updates.
meetings = Table(
    "meetings", metadata,
    Column("case_id", Integer, ForeignKey("cases.id"), primary_key=True),
    _required("starts_at", UtcDateTime()),
    _required("minutes", Integer),
    _required("place", String(200)),
    _required("sequence", Integer),
    _required("arranged_at", UtcDateTime()),
)

# Who did what, when, from which interface. Rows are never updated or deleted, and each is chained
# to the one before by hash (`models.audit`), so a row changed, removed or moved shows. Ids are given
# out by `audit_chain_head`, not by the database, so that the id (which is hashed) is known before
# the row is written and the ids follow the chain.
audit_events = Table(
    "audit_events", metadata,
    _id(),
    _case_id(nullable=True, index=True),
    _required("at", UtcDateTime()),
    _required("actor", String(80)),
    _required("via", StrEnumColumn(Interface)),
    _required("action", String(64)),
    _required("detail", JSON),
    # Unique: two rows linking to one predecessor would be a fork, refused by the database itself.
    _required("prev_hash", String(64), unique=True),
    _required("hash", String(64)),
)

# The chain's head: one row holding the newest audit row's id and hash. A writer locks it (by
# updating it) for the rest of its transaction, so concurrent writers link one after another.
audit_chain_head = Table(
    "audit_chain_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    _required("last_id", Integer),
    _required("last_hash", String(64)),
    CheckConstraint("id = 1", name="one_row"),
)

# An email queued in the same transaction as the change that caused it.
outbox = Table(
    "outbox", metadata,
    _id(),
    _case_id(nullable=True, index=True),
    _required("dedup_key", String(200), unique=True),
    _required("message_id", String(200), unique=True),
    _required("event", String(40)),
    # The case reference (never personal data) so listings and dead-letter alerts name the case
    # without a join; None for messages about no single case, such as the daily digest.
    _optional("case_ref", String(32)),
    _required("recipients", JSON),
    _required("subject", String(250)),
    _required("body_text", Text),
    _optional("body_html", Text),
    _optional("attachments", JSON),
    _required("status", StrEnumColumn(OutboxStatus), index=True),
    _required("attempts", Integer, default=0),
    _required("next_attempt_at", UtcDateTime()),
    _optional("last_error", String(300)),
    # How many times an operator has requeued this dead letter: part of its alert's dedup key, so
    # a message that dies again after a retry is reported again.
    _required("requeues", Integer, default=0),
    _required("created_at", UtcDateTime()),
    _optional("sent_at", UtcDateTime()),
)

# A durable deadline timer of one item, fired by the first timer pass at or after `fire_at`;
# `flow_run_id` is the pass planned for it, once Prefect has been told.
timers = Table(
    "timers", metadata,
    _id(),
    _case_id(index=True),
    Column("item_id", Integer, ForeignKey("items.id"), nullable=False, index=True),
    _required("kind", StrEnumColumn(TimerKind)),
    _required("sequence", Integer, default=0),
    _required("fire_at", UtcDateTime(), index=True),
    _required("key", String(120), unique=True),
    _required("state", StrEnumColumn(TimerState), index=True),
    _optional("flow_run_id", String(36)),
    _optional("fired_at", UtcDateTime()),
)
