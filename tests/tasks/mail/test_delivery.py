"""Delivery against a real SMTP server on loopback: success, temporary and permanent refusals,
an outage, a crash between the server accepting and the row being marked sent, and two delivery
processes at once. Each runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from models.clock import FixedClock, ScaledClock
from models.enums import Interface, Role
from models.forms import parse_referral
from models.processes import StepId
from models.settings import Settings
from models.tables import Case, OutboxMessage, OutboxStatus
from tasks.mail.delivery import DeliveryReport, backoff, deliver_pending
from tasks.mail.directory import Directory
from tasks.mail.messages import reminder_email
from tasks.mail.outbox import queue_email
from tasks.mail.rendering import EmailDraft
from tasks.mail.sender import SmtpSender
from tasks.service import Actor, CaseService
from tasks.store.db import Store
from tests.conftest import EXAMPLE_NOW, EXAMPLE_REFERRAL
from tests.tasks.mail.conftest import FAST, MAIL_FROM, NOW, SmtpServer

DASHBOARD = "http://127.0.0.1:4200"


def _reminder(directory: Directory, number: int = 1) -> EmailDraft:
    return reminder_email(case_ref=f"SR-2026-{number:04d}", step=StepId.SIN_SUBMISSION,
                          due=date(2026, 3, 6), owner=Role.LOCAL_AUTHORITY, directory=directory,
                          dashboard_url=DASHBOARD)


def _queue(store: Store, clock: FixedClock, *drafts: EmailDraft) -> None:
    with store.transaction() as session:
        for draft in drafts:
            assert queue_email(session, draft, case_id=None, now=clock.now(),
                               mail_from_domain=MAIL_FROM.rpartition("@")[2])


def _rows(store: Store) -> list[OutboxMessage]:
    with store.reading() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all())


def _deliver(store: Store, sender: SmtpSender, clock: FixedClock, directory: Directory,
             **options: object) -> DeliveryReport:
    settings = {**FAST, **options}
    return deliver_pending(store, sender, now=clock, fallback_address=directory.fallback,
                           **settings)  # type: ignore[arg-type]


def test_a_due_message_is_sent_once_with_its_fixed_message_id(
        mail_store: Store, sender: SmtpSender, fixed_clock: FixedClock, directory: Directory,
        smtp_server: SmtpServer) -> None:
    _queue(mail_store, fixed_clock, _reminder(directory))

    report = _deliver(mail_store, sender, fixed_clock, directory)

    [row] = _rows(mail_store)
    assert report.sent == 1
    assert report.claimed == 1
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 1)
    assert row.sent_at is not None
    assert smtp_server.message_ids() == [row.message_id]
    # A second run finds nothing to do.
    assert _deliver(mail_store, sender, fixed_clock, directory).claimed == 0
    assert smtp_server.message_ids() == [row.message_id]


def test_421_then_450_then_success_delivers_exactly_once(
        mail_store: Store, sender: SmtpSender, fixed_clock: FixedClock, directory: Directory,
        smtp_server: SmtpServer) -> None:
    smtp_server.script.replies += ["421 4.3.0 Service busy, closing", "450 4.2.0 Mailbox busy"]
    _queue(mail_store, fixed_clock, _reminder(directory))

    first = _deliver(mail_store, sender, fixed_clock, directory)
    [row] = _rows(mail_store)
    assert (first.retrying, first.stopped_early, row.attempts) == (1, True, 1)
    assert row.last_error is not None
    assert "421" in row.last_error
    # Not due again until the backoff has passed.
    assert _deliver(mail_store, sender, fixed_clock, directory).claimed == 0

    fixed_clock.advance(timedelta(seconds=1))
    second = _deliver(mail_store, sender, fixed_clock, directory)
    [row] = _rows(mail_store)
    assert (second.retrying, row.attempts, row.status) == (1, 2, OutboxStatus.PENDING)
    assert row.last_error is not None
    assert "450" in row.last_error

    fixed_clock.advance(timedelta(seconds=1))
    assert _deliver(mail_store, sender, fixed_clock, directory).claimed == 0  # backoff doubled to 2 s
    fixed_clock.advance(timedelta(seconds=1))
    third = _deliver(mail_store, sender, fixed_clock, directory)

    [row] = _rows(mail_store)
    assert third.sent == 1
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 3)
    assert smtp_server.message_ids() == [row.message_id]


def test_550_makes_a_dead_letter_and_the_fallback_is_alerted(
        mail_store: Store, sender: SmtpSender, fixed_clock: FixedClock, directory: Directory,
        smtp_server: SmtpServer) -> None:
    smtp_server.script.replies.append("550 5.1.1 Mailbox unavailable")
    smtp_server.script.only_for = lambda envelope: directory.fallback not in envelope.recipients
    _queue(mail_store, fixed_clock, _reminder(directory))

    report = _deliver(mail_store, sender, fixed_clock, directory)

    original, alert = _rows(mail_store)
    assert (report.dead, report.alerts_queued, report.sent) == (1, 1, 1)
    assert (original.status, original.attempts) == (OutboxStatus.DEAD, 1)
    assert original.last_error is not None
    assert "550" in original.last_error
    assert alert.event == "dead-letter-alert"
    assert alert.status == OutboxStatus.SENT
    assert alert.recipients == {"to": [directory.fallback], "cc": []}
    assert alert.dedup_key == f"dead-letter:{original.message_id}:0"
    assert smtp_server.message_ids() == [alert.message_id]
    [received] = smtp_server.sinks[0].messages
    assert received.recipients == (directory.fallback,)
    assert f"outbox {original.id}" in received.subject
    assert "SR-2026-0001" in received.subject
    assert f"sbu outbox retry {original.id}" in received.content.decode()


def test_retries_exhausted_make_a_dead_letter(
        mail_store: Store, sender: SmtpSender, fixed_clock: FixedClock, directory: Directory,
        smtp_server: SmtpServer) -> None:
    smtp_server.script.replies += ["451 4.3.0 Try later"] * 3
    smtp_server.script.only_for = lambda envelope: directory.fallback not in envelope.recipients
    _queue(mail_store, fixed_clock, _reminder(directory))

    for _ in range(3):
        _deliver(mail_store, sender, fixed_clock, directory, max_attempts=3)
        fixed_clock.advance(timedelta(seconds=10))

    original, alert = _rows(mail_store)
    assert (original.status, original.attempts) == (OutboxStatus.DEAD, 3)
    assert alert.status == OutboxStatus.SENT
    assert smtp_server.message_ids() == [alert.message_id]


def test_an_alert_that_cannot_be_delivered_does_not_alert_again(
        mail_store: Store, sender: SmtpSender, fixed_clock: FixedClock, directory: Directory,
        smtp_server: SmtpServer) -> None:
    smtp_server.script.replies += ["554 5.7.1 Rejected"] * 2
    _queue(mail_store, fixed_clock, _reminder(directory))

    report = _deliver(mail_store, sender, fixed_clock, directory)

    rows = _rows(mail_store)
    assert [row.status for row in rows] == [OutboxStatus.DEAD, OutboxStatus.DEAD]
    assert rows[1].event == "dead-letter-alert"
    assert (report.dead, report.alerts_queued) == (2, 1)


def test_an_outage_delays_mail_and_every_message_arrives_exactly_once(
        mail_store: Store, sender: SmtpSender, fixed_clock: FixedClock, directory: Directory,
        smtp_server: SmtpServer) -> None:
    smtp_server.stop()
    drafts = [_reminder(directory, number) for number in range(1, 6)]
    _queue(mail_store, fixed_clock, *drafts)

    for _ in range(3):  # the server refuses connections for three runs
        report = _deliver(mail_store, sender, fixed_clock, directory)
        assert report.sent == 0
        assert report.stopped_early
        fixed_clock.advance(timedelta(seconds=5))
    # Only one message per run paid for the outage; the rest were not tried.
    assert sum(row.attempts for row in _rows(mail_store)) == 3

    smtp_server.start()
    for _ in range(3):
        _deliver(mail_store, sender, fixed_clock, directory)
        fixed_clock.advance(timedelta(seconds=5))

    rows = _rows(mail_store)
    assert {row.status for row in rows} == {OutboxStatus.SENT}
    received = smtp_server.message_ids()
    assert sorted(received) == sorted(row.message_id for row in rows)
    assert len(received) == len(set(received)) == 5


def test_a_crash_after_the_server_accepted_resends_the_same_message_id(
        mail_store: Store, sender: SmtpSender, fixed_clock: FixedClock, directory: Directory,
        smtp_server: SmtpServer) -> None:
    _queue(mail_store, fixed_clock, _reminder(directory))

    def crash(_outbox_id: int) -> None:
        raise RuntimeError("the delivery process died before marking the row sent")

    with pytest.raises(RuntimeError, match="died"):
        _deliver(mail_store, sender, fixed_clock, directory, after_accept=crash)
    [row] = _rows(mail_store)
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 1)
    # While the lease holds, no other run sends it again.
    assert _deliver(mail_store, sender, fixed_clock, directory).claimed == 0

    fixed_clock.advance(FAST["lease"])
    assert _deliver(mail_store, sender, fixed_clock, directory).sent == 1

    [row] = _rows(mail_store)
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 2)
    # The duplicate carries the same Message-ID and is the very same bytes, so the receiving
    # system can drop it by Message-ID.
    assert smtp_server.message_ids() == [row.message_id, row.message_id]
    first, second = smtp_server.messages()
    assert first == second


def test_a_process_stuck_in_a_crash_loop_ends_in_a_dead_letter(
        mail_store: Store, sender: SmtpSender, fixed_clock: FixedClock, directory: Directory,
        smtp_server: SmtpServer) -> None:
    _queue(mail_store, fixed_clock, _reminder(directory))

    def crash(_outbox_id: int) -> None:
        raise RuntimeError("crash")

    for _ in range(2):
        with pytest.raises(RuntimeError):
            _deliver(mail_store, sender, fixed_clock, directory, max_attempts=2, after_accept=crash)
        fixed_clock.advance(FAST["lease"])
    report = _deliver(mail_store, sender, fixed_clock, directory, max_attempts=2)

    original, alert = _rows(mail_store)
    assert report.dead == 1
    assert original.status == OutboxStatus.DEAD
    assert alert.status == OutboxStatus.SENT


def test_recipients_refused_by_the_server_are_reported_to_the_fallback(
        mail_store: Store, sender: SmtpSender, fixed_clock: FixedClock, directory: Directory,
        smtp_server: SmtpServer) -> None:
    smtp_server.sinks[0].refuse_recipient = (
        lambda address: "550 5.1.1 No such user" if address == directory.address(Role.SBU) else None)
    draft = reminder_email(case_ref="SR-2026-0001", step=StepId.RR_MEETING, due=date(2026, 3, 6),
                           owner=Role.DSP_POLICE, directory=directory, dashboard_url=DASHBOARD)
    draft = draft.model_copy(update={"cc": (directory.address(Role.SBU),)})
    _queue(mail_store, fixed_clock, draft)

    report = _deliver(mail_store, sender, fixed_clock, directory)

    original, alert = _rows(mail_store)
    assert (report.sent, report.alerts_queued) == (2, 1)
    assert original.status == OutboxStatus.SENT
    assert original.last_error == "accepted; refused for 1 recipient(s)"
    assert alert.event == "recipients-refused-alert"
    assert alert.status == OutboxStatus.SENT


def test_two_delivery_processes_at_once_send_each_message_once(
        mail_db_url: str, mail_store: Store, smtp_config: object, fixed_clock: FixedClock,
        directory: Directory, smtp_server: SmtpServer) -> None:
    # A little latency at the server widens the window in which the two could collide.
    smtp_server.script.delay_seconds = 0.005
    _queue(mail_store, fixed_clock, *(_reminder(directory, number) for number in range(1, 31)))
    stores = [Store(mail_db_url), Store(mail_db_url)]
    reports: list[DeliveryReport] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run(store: Store) -> None:
        try:
            start.wait()
            reports.append(deliver_pending(store, SmtpSender(smtp_config),  # type: ignore[arg-type]
                                           now=fixed_clock, fallback_address=directory.fallback,
                                           **FAST))  # type: ignore[arg-type]
        except BaseException as error:  # noqa: BLE001 - a thread's failure is reported by the test
            errors.append(error)

    threads = [threading.Thread(target=run, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for store in stores:
        store.dispose()

    assert not errors
    assert sum(report.sent for report in reports) == 30
    received = smtp_server.message_ids()
    assert len(received) == len(set(received)) == 30
    assert {row.status for row in _rows(mail_store)} == {OutboxStatus.SENT}


def test_backoff_doubles_up_to_the_cap() -> None:
    delays = [backoff(attempt, base_delay=timedelta(seconds=30), max_delay=timedelta(minutes=5))
              for attempt in range(1, 7)]
    assert delays == [timedelta(seconds=s) for s in (30, 60, 120, 240, 300, 300)]


def test_waits_are_wall_time_under_a_scaled_clock(
        sqlite_store: Store, sender: SmtpSender, directory: Directory,
        smtp_server: SmtpServer) -> None:
    smtp_server.script.replies.append("450 4.2.0 Busy")
    clock = ScaledClock(scale=100.0, epoch=NOW)
    with sqlite_store.transaction() as session:
        queue_email(session, _reminder(directory), case_id=None, now=clock.now(),
                    mail_from_domain="partnership.example")
    before = clock.now()

    deliver_pending(sqlite_store, sender, now=clock, fallback_address=directory.fallback,
                    base_delay=timedelta(seconds=30))

    [row] = _rows(sqlite_store)
    wait = row.next_attempt_at.replace(tzinfo=before.tzinfo) - before
    # 30 wall seconds are 3000 seconds of case time at scale 100.
    assert timedelta(seconds=2990) < wait < timedelta(seconds=3100)


def test_a_cases_mail_goes_in_order_and_one_held_back_holds_back_only_its_case(
        mail_store: Store, sender: SmtpSender, fixed_clock: FixedClock, directory: Directory,
        smtp_server: SmtpServer, settings: Settings) -> None:
    service = CaseService(store=mail_store, settings=settings, clock=fixed_clock)
    case_ref = service.refer(parse_referral(EXAMPLE_REFERRAL, now=EXAMPLE_NOW),
                             actor=Actor("sbu-officer", Interface.CLI)).case_ref
    with mail_store.transaction() as session:
        case_id = session.scalars(select(Case.id).where(Case.case_ref == case_ref)).one()
        for number in (2, 3):  # two more of this case's, after what the referral wrote
            assert queue_email(session, _reminder(directory, number), case_id=case_id, now=fixed_clock.now(),
                               mail_from_domain=MAIL_FROM.rpartition("@")[2])
    _queue(mail_store, fixed_clock, _reminder(directory, 9))  # nobody's case
    ours = [row.message_id for row in _rows(mail_store) if row.case_id == case_id]
    assert len(ours) >= 3
    # The case's first message is refused for now: the case's later ones wait behind it.
    smtp_server.script.replies += ["450 4.2.0 Mailbox busy"]

    first = _deliver(mail_store, sender, fixed_clock, directory)
    assert (first.retrying, first.sent) == (1, 1)
    assert smtp_server.message_ids() == [row.message_id for row in _rows(mail_store) if row.case_id is None]

    fixed_clock.advance(timedelta(seconds=1))
    second = _deliver(mail_store, sender, fixed_clock, directory)
    assert second.sent == len(ours)
    assert smtp_server.message_ids()[1:] == ours
