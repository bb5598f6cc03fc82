"""The transactional outbox: an email becomes a row in the same database transaction as the change
that caused it, so it exists if and only if the change was committed (docs/architecture.md, "Reliability").

Each row carries a fixed Message-ID derived from its deduplication key. The key is unique in the
table, so the same reminder for the same step and due date can be queued only once, however many
times the change that causes it is retried; and every delivery attempt of a row sends the same
Message-ID, so a receiving system can drop a duplicate (see `tasks.mail.delivery`).

Repository functions take the session and never commit: the caller owns the transaction.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Insert, func, select
from sqlalchemy.orm import Session

from models import schema
from models.enums import Interface
from models.errors import NotFound, Refused, SbuError
from models.tables import OutboxMessage, OutboxStatus
from tasks.mail.directory import is_valid_domain
from tasks.mail.rendering import Attachment, EmailDraft
from tasks.mail.sender import OutgoingEmail
from tasks.store.repositories import add_audit_event


def message_id_for(dedup_key: str, *, domain: str) -> str:
    """The Message-ID of the email with `dedup_key`: the same key always gives the same id.

    The key is hashed so that the id has a fixed length and no characters a mail system might
    rewrite; the domain is the sender's, as RFC 5322 recommends.
    """
    if not is_valid_domain(domain):
        raise SbuError("mail_from_domain is not a valid domain")
    digest = hashlib.sha256(dedup_key.encode()).hexdigest()[:40]
    return f"<{digest}.sbu@{domain}>"


def mail_domain(mail_from: str) -> str:
    """The domain part of the From address (`SBU_MAIL_FROM`)."""
    return mail_from.rpartition("@")[2] or "localhost"


def queue_email(session: Session, draft: EmailDraft, *, case_id: int | None, now: datetime,
                mail_from_domain: str) -> bool:
    """Add `draft` to the outbox in the caller's transaction; never commits.

    Returns False, and adds nothing, when a message with the same deduplication key is already
    queued (in any state). The insert is a single `INSERT ... ON CONFLICT DO NOTHING`, which both
    SQLite and PostgreSQL support: it needs no SAVEPOINT (pysqlite's SAVEPOINT handling can commit
    the caller's transaction early when the savepoint is the first statement), it never aborts the
    caller's transaction on a duplicate, and on PostgreSQL a concurrent transaction queueing the
    same key waits for the first to finish and then does nothing.
    """
    row = _row_values(draft, case_id=case_id, now=now, domain=mail_from_domain)
    table = schema.outbox
    dialect = session.get_bind().dialect.name
    statement: Insert
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement = pg_insert(table).values(**row).on_conflict_do_nothing()
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(table).values(**row).on_conflict_do_nothing()
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported stores
        raise SbuError(f"the outbox does not support the {dialect} database")
    # RETURNING tells an insert from a skipped duplicate on both databases (rowcount does not
    # reliably, through every driver).
    inserted = session.execute(statement.returning(table.c.id)).first()
    return inserted is not None


def _row_values(draft: EmailDraft, *, case_id: int | None, now: datetime, domain: str) -> dict[str, Any]:
    moment = as_utc(now)
    return {
        "case_id": case_id,
        "dedup_key": draft.dedup_key,
        "message_id": message_id_for(draft.dedup_key, domain=domain),
        "event": draft.event,
        "case_ref": draft.case_ref,
        "recipients": {"to": list(draft.to), "cc": list(draft.cc)},
        "subject": draft.subject,
        "body_text": draft.text,
        "body_html": draft.html,
        "attachments": attachments_to_json(draft.attachments),
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "requeues": 0,
        "next_attempt_at": moment,
        "last_error": None,
        "created_at": moment,
        "sent_at": None,
    }


def attachments_to_json(attachments: Collection[Attachment]) -> dict[str, Any] | None:
    """Attachments as JSON for the `attachments` column (bytes as base64)."""
    if not attachments:
        return None
    return {"items": [
        {"filename": item.filename, "maintype": item.maintype, "subtype": item.subtype,
         "params": [list(pair) for pair in item.params],
         "data": base64.b64encode(item.data).decode("ascii")}
        for item in attachments
    ]}


def attachments_from_json(value: dict[str, Any] | None) -> tuple[Attachment, ...]:
    if not value:
        return ()
    return tuple(
        Attachment(filename=item["filename"], maintype=item["maintype"], subtype=item["subtype"],
                   params=tuple((str(name), str(val)) for name, val in item["params"]),
                   data=base64.b64decode(item["data"]))
        for item in value["items"]
    )


def outgoing_email(row: OutboxMessage) -> OutgoingEmail:
    """The row as the sender needs it."""
    return OutgoingEmail(
        message_id=row.message_id,
        to=tuple(row.recipients.get("to", ())),
        cc=tuple(row.recipients.get("cc", ())),
        subject=row.subject,
        text=row.body_text,
        html=row.body_html,
        attachments=attachments_from_json(row.attachments),
        date=as_utc(row.created_at),
    )


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC. SQLite hands timestamps back without a zone; they were stored as UTC."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


# -- listing and requeueing (sbu outbox) ---------------------------------------------------------

@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One outbox row for a listing: no bodies, no addresses."""

    id: int
    event: str
    case_ref: str | None
    status: OutboxStatus
    attempts: int
    recipients: int
    subject: str
    created_at: datetime
    sent_at: datetime | None
    next_attempt_at: datetime
    last_error: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "event": self.event, "case_ref": self.case_ref,
            "status": self.status.value, "attempts": self.attempts, "recipients": self.recipients,
            "subject": self.subject, "created_at": self.created_at.isoformat(),
            "sent_at": self.sent_at.isoformat() if self.sent_at else None,
            "next_attempt_at": self.next_attempt_at.isoformat() if self.status is OutboxStatus.PENDING
            else None,
            "last_error": self.last_error,
        }


def _entry(row: OutboxMessage) -> OutboxEntry:
    recipients = row.recipients
    return OutboxEntry(
        id=row.id, event=row.event, case_ref=row.case_ref, status=OutboxStatus(row.status),
        attempts=row.attempts,
        recipients=len(set(recipients.get("to", ())) | set(recipients.get("cc", ()))),
        subject=row.subject, created_at=as_utc(row.created_at),
        sent_at=as_utc(row.sent_at) if row.sent_at else None,
        next_attempt_at=as_utc(row.next_attempt_at), last_error=row.last_error,
    )


def list_outbox(session: Session, *, statuses: Collection[OutboxStatus] | None = None,
                case_ref: str | None = None, limit: int = 200) -> list[OutboxEntry]:
    """The newest `limit` outbox rows, newest first, optionally of some statuses or one case."""
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if statuses:
        query = query.where(OutboxMessage.status.in_([status.value for status in statuses]))
    if case_ref is not None:
        query = query.where(OutboxMessage.case_ref == case_ref)
    return [_entry(row) for row in session.scalars(query).all()]


def outbox_counts(session: Session) -> dict[OutboxStatus, int]:
    """How many rows are pending, sent and dead."""
    counts = dict.fromkeys(OutboxStatus, 0)
    for status, count in session.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all():
        counts[OutboxStatus(status)] = int(count)
    return counts


def requeue_dead_letter(session: Session, *, outbox_id: int, now: datetime, actor: str,
                        via: Interface) -> OutboxEntry:
    """Put a dead letter back in the queue with a fresh set of attempts, due now, and write the
    audit event. Refused (nothing written) unless the row is a dead letter."""
    row = session.scalars(
        select(OutboxMessage).where(OutboxMessage.id == outbox_id).with_for_update()).one_or_none()
    if row is None:
        raise NotFound(f"no outbox message {outbox_id}")
    # The column is read back as a plain string: compare through the enum.
    if OutboxStatus(row.status) is not OutboxStatus.DEAD:
        raise Refused(f"outbox message {outbox_id} is {OutboxStatus(row.status).value}, "
                      "not a dead letter; only dead letters can be retried")
    moment = as_utc(now)
    row.status = OutboxStatus.PENDING
    row.attempts = 0
    row.requeues += 1
    row.next_attempt_at = moment
    add_audit_event(session=session, case_id=row.case_id, at=moment, actor=actor, via=via,
                    action="outbox-requeued",
                    detail={"outbox_id": row.id, "event": row.event, "requeues": row.requeues})
    return _entry(row)
