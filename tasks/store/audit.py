"""The audit trail, read with SQLAlchemy Core (like `tasks.store.queries`): the events as `sbu audit`
lists them, and the check of the whole hash chain (`models.audit`) that `sbu audit verify` runs.

Neither imports the ORM or the case service, so both answer as quickly as `sbu status`. Rows are
only ever written by `tasks.store.repositories.add_audit_event`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, true

from models import schema
from models.audit import AuditRow, ChainHead, ChainReport, verify_chain
from tasks.store.queries import no_such_case

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

# How many rows the check holds in memory at once: a long trail is streamed, not loaded.
_STREAM_BATCH = 2000


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit event as `sbu audit` shows it."""

    id: int
    at: datetime
    case_ref: str | None
    actor: str
    via: str
    action: str
    detail: dict[str, Any]
    hash: str

    def shown_detail(self, *, values: bool) -> dict[str, Any] | list[str]:
        """The detail's keys, sorted; its values only when asked for. Some values are a person's own
        words (the reason a date moved, under `reason`), and which ones is the business of the code
        that writes each event: showing keys only by default keeps every listing safe to share."""
        return dict(self.detail) if values else sorted(self.detail)

    def as_json(self, *, values: bool) -> dict[str, Any]:
        return {"id": self.id, "at": self.at.isoformat(), "case_ref": self.case_ref, "actor": self.actor,
                "via": self.via, "action": self.action,
                ("detail" if values else "detail_keys"): self.shown_detail(values=values),
                "hash": self.hash}


def audit_entries(engine: Engine, *, partnership: str, case_ref: str | None, limit: int) -> list[AuditEntry]:
    """The newest `limit` events, oldest first: of one case, or of every case of the partnership and
    the events about no single case (a requeued digest, say)."""
    events, cases = schema.audit_events, schema.cases
    query = (select(events.c.id, events.c.at, cases.c.case_ref, events.c.actor, events.c.via,
                    events.c.action, events.c.detail, events.c.hash)
             .select_from(events.outerjoin(cases, cases.c.id == events.c.case_id))
             .order_by(events.c.id.desc()).limit(limit))
    with engine.connect() as connection:
        if case_ref is not None:
            case_id = connection.execute(select(cases.c.id).where(
                cases.c.case_ref == case_ref, cases.c.partnership == partnership)).scalar_one_or_none()
            if case_id is None:
                raise no_such_case(case_ref, partnership)
            query = query.where(events.c.case_id == case_id)
        else:
            query = query.where(cases.c.partnership.is_(None) | (cases.c.partnership == partnership))
        rows = connection.execute(query).all()
    return [AuditEntry(id=r.id, at=r.at, case_ref=r.case_ref, actor=r.actor, via=r.via.value,
                       action=r.action, detail=dict(r.detail), hash=r.hash)
            for r in reversed(rows)]


def verify_audit_chain(engine: Engine) -> ChainReport:
    """Check every audit row of the store (all partnerships: the chain is one) against its hash and
    its link, and the newest against the chain's head; name the first bad row."""
    with engine.connect() as connection:
        head, rows = _chain_rows(connection)
        return verify_chain(head=head, rows=rows, locate=lambda digest: _locate(connection, digest))


def _chain_rows(connection: Connection) -> tuple[ChainHead | None, Iterator[AuditRow]]:
    """The head and every row in id order, from one statement: one statement reads one snapshot on
    both databases, so rows committed while the check runs can neither appear without the head
    that records them nor the head without its rows. The head is joined to every row (and is
    the only row when there are no events)."""
    events, head = schema.audit_events, schema.audit_chain_head
    result = connection.execution_options(yield_per=_STREAM_BATCH).execute(
        select(head.c.last_id, head.c.last_hash, events)
        .select_from(head.outerjoin(events, true())).order_by(events.c.id))
    stream = iter(result)
    first = next(stream, None)
    if first is None:
        result.close()
        return None, iter(())

    def rows() -> Iterator[AuditRow]:
        for row in itertools.chain([first], stream):
            if row.id is None:  # the head alone: there are no events
                continue
            yield AuditRow(id=row.id, case_id=row.case_id, at=row.at, actor=row.actor, via=row.via.value,
                           action=row.action, detail=row.detail, prev_hash=row.prev_hash, hash=row.hash)

    return ChainHead(last_id=first.last_id, last_hash=first.last_hash), rows()


def _locate(connection: Connection, digest: str) -> int | None:
    events = schema.audit_events
    found: int | None = connection.execute(
        select(events.c.id).where(events.c.hash == digest).order_by(events.c.id).limit(1)).scalar()
    return found
