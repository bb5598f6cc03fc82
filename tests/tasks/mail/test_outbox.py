"""The outbox on SQLite and PostgreSQL: queued in the caller's transaction, once per dedup key,
with a fixed Message-ID; listing and requeueing dead letters."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models.clock import FixedClock
from models.enums import Agency, Interface, Role
from models.errors import NotFound, Refused, SbuError
from models.processes import StepId
from models.tables import AuditEvent, OutboxMessage, OutboxStatus
from tasks.mail import messages
from tasks.mail.checked import MeetingPlace
from tasks.mail.directory import Directory
from tasks.mail.outbox import (
    attachments_from_json,
    list_outbox,
    message_id_for,
    outbox_counts,
    outgoing_email,
    queue_email,
    requeue_dead_letter,
)
from tasks.mail.rendering import EmailDraft
from tasks.store.db import Store
from tasks.store.repositories import add_audit_event

DOMAIN = "partnership.example"


def _reminder(directory: Directory, due: date = date(2026, 3, 6)) -> EmailDraft:
    return messages.reminder_email(case_ref="SR-2026-0001", step=StepId.SIN_SUBMISSION, due=due,
                                   owner=Role.LOCAL_AUTHORITY, directory=directory,
                                   dashboard_url="http://127.0.0.1:4200")


def _audit(session: Session, at: datetime, action: str) -> None:
    add_audit_event(session=session, case_id=None, at=at, actor="test", via=Interface.SYSTEM,
                    action=action, detail={})


def test_the_same_dedup_key_is_queued_once_and_the_callers_work_survives(
        mail_store: Store, directory: Directory, fixed_clock: FixedClock) -> None:
    now = fixed_clock.now()
    with mail_store.transaction() as session:
        _audit(session, now, "before")
        assert queue_email(session, _reminder(directory), case_id=None, now=now, mail_from_domain=DOMAIN)
        assert not queue_email(session, _reminder(directory), case_id=None, now=now,
                               mail_from_domain=DOMAIN)
        # The duplicate did not spoil the transaction: more work still goes in.
        _audit(session, now, "after")
    with mail_store.transaction() as session:
        assert not queue_email(session, _reminder(directory), case_id=None, now=now,
                               mail_from_domain=DOMAIN)
        assert queue_email(session, _reminder(directory, due=date(2026, 3, 13)), case_id=None,
                           now=now, mail_from_domain=DOMAIN)

    with mail_store.reading() as session:
        rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert [row.dedup_key for row in rows] == ["reminder:SR-2026-0001:sin-submission:2026-03-06",
                                               "reminder:SR-2026-0001:sin-submission:2026-03-13"]
    assert actions == ["before", "after"]
    first = rows[0]
    assert first.message_id == message_id_for(first.dedup_key, domain=DOMAIN)
    assert (first.status, first.attempts, first.case_ref) == (OutboxStatus.PENDING, 0, "SR-2026-0001")
    assert first.recipients == {"to": [directory.address(Role.LOCAL_AUTHORITY)], "cc": []}


def test_a_rolled_back_change_leaves_no_email(mail_store: Store, directory: Directory,
                                              fixed_clock: FixedClock) -> None:
    def failed_change() -> None:
        with mail_store.transaction() as session:
            queue_email(session, _reminder(directory), case_id=None, now=fixed_clock.now(),
                        mail_from_domain=DOMAIN)
            raise RuntimeError("the change failed after queueing")

    with pytest.raises(RuntimeError):
        failed_change()
    with mail_store.reading() as session:
        assert outbox_counts(session)[OutboxStatus.PENDING] == 0
    # ... so the same email can be queued by the retried change.
    with mail_store.transaction() as session:
        assert queue_email(session, _reminder(directory), case_id=None, now=fixed_clock.now(),
                           mail_from_domain=DOMAIN)


def test_two_transactions_racing_on_one_key_queue_one_email(
        mail_db_url: str, mail_store: Store, directory: Directory, fixed_clock: FixedClock) -> None:
    other = Store(mail_db_url)
    results: list[bool] = []
    first_inserted = threading.Event()

    def second() -> None:
        first_inserted.wait(5)
        with other.transaction() as session:
            # Waits for the first transaction's lock, then sees its row and does nothing.
            results.append(queue_email(session, _reminder(directory), case_id=None,
                                       now=fixed_clock.now(), mail_from_domain=DOMAIN))

    thread = threading.Thread(target=second)
    thread.start()
    with mail_store.transaction() as session:
        results.append(queue_email(session, _reminder(directory), case_id=None, now=fixed_clock.now(),
                                   mail_from_domain=DOMAIN))
        first_inserted.set()
        threading.Event().wait(0.3)  # the second transaction is now waiting on us
    thread.join(10)
    other.dispose()
    assert results == [True, False]
    with mail_store.reading() as session:
        assert outbox_counts(session)[OutboxStatus.PENDING] == 1


def test_message_ids_are_fixed_per_key_and_domain() -> None:
    key = "reminder:SR-2026-0001:sin-submission:2026-03-06"
    assert message_id_for(key, domain=DOMAIN) == message_id_for(key, domain=DOMAIN)
    assert message_id_for(key, domain=DOMAIN) != message_id_for(key + "x", domain=DOMAIN)
    assert message_id_for(key, domain=DOMAIN).endswith(f"@{DOMAIN}>")
    with pytest.raises(SbuError):
        message_id_for(key, domain="bad domain\r\n")


def test_attachments_round_trip_through_the_row(mail_store: Store, directory: Directory,
                                                fixed_clock: FixedClock) -> None:
    draft = messages.rr_meeting_invitation_email(
        case_ref="SR-2026-0001", starts_at=datetime(2026, 3, 12, 10, tzinfo=UTC),
        duration=timedelta(hours=1), place=MeetingPlace("Committee Room 2"), agencies=[Agency.POLICE],
        directory=directory, dashboard_url="http://127.0.0.1:4200",
        issued_at=datetime(2026, 3, 3, 9, tzinfo=UTC), sequence=0)
    with mail_store.transaction() as session:
        queue_email(session, draft, case_id=None, now=fixed_clock.now(), mail_from_domain=DOMAIN)
    with mail_store.reading() as session:
        row = session.scalars(select(OutboxMessage)).one()
        assert attachments_from_json(row.attachments) == draft.attachments
        outgoing = outgoing_email(row)
    assert outgoing.date == fixed_clock.now()
    assert outgoing.cc == draft.cc
    assert outgoing.to == draft.to


def test_listing_and_requeueing_a_dead_letter(mail_store: Store, directory: Directory,
                                              fixed_clock: FixedClock) -> None:
    now = fixed_clock.now()
    with mail_store.transaction() as session:
        queue_email(session, _reminder(directory), case_id=None, now=now, mail_from_domain=DOMAIN)
        queue_email(session, _reminder(directory, date(2026, 3, 13)), case_id=None, now=now,
                    mail_from_domain=DOMAIN)
        session.execute(update(OutboxMessage).where(OutboxMessage.id == 1)
                        .values(status=OutboxStatus.DEAD, attempts=5, last_error="550 no"))

    with mail_store.reading() as session:
        entries = list_outbox(session)
        dead = list_outbox(session, statuses=[OutboxStatus.DEAD])
        assert outbox_counts(session) == {OutboxStatus.PENDING: 1, OutboxStatus.SENT: 0,
                                          OutboxStatus.DEAD: 1}
    assert [entry.id for entry in entries] == [2, 1]
    assert [entry.id for entry in dead] == [1]
    payload = dead[0].as_json()
    assert payload["recipients"] == 1
    assert payload["status"] == "dead"
    assert not any("@" in str(value) for value in payload.values())

    later = now + timedelta(hours=1)
    with mail_store.transaction() as session:
        entry = requeue_dead_letter(session, outbox_id=1, now=later, actor="officer", via=Interface.CLI)
    assert (entry.status, entry.attempts, entry.next_attempt_at) == (OutboxStatus.PENDING, 0, later)
    with mail_store.reading() as session:
        row = session.get_one(OutboxMessage, 1)
        audit = session.scalars(select(AuditEvent)).one()
    assert row.requeues == 1
    assert (audit.action, audit.actor, audit.detail["outbox_id"]) == ("outbox-requeued", "officer", 1)

    with pytest.raises(Refused, match="outbox message 2 is pending, not a dead letter"), \
            mail_store.transaction() as session:
        requeue_dead_letter(session, outbox_id=2, now=later, actor="officer", via=Interface.CLI)
    with pytest.raises(NotFound, match="no outbox message 99"), mail_store.transaction() as session:
        requeue_dead_letter(session, outbox_id=99, now=later, actor="officer", via=Interface.CLI)
