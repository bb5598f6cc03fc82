"""Drain the outbox: send what is due, retry what failed for a while, bury what never will.

Per message:
- success: the row is marked `sent` (with `sent_at`) in its own short transaction right after the
  server accepted it;
- transient failure (SMTP 4xx such as 421 or 450, a timeout, a refused connection): the row stays
  `pending`, `attempts` counts it and `next_attempt_at` moves out by an exponential backoff
  (`base_delay * 2**(attempts-1)`, at most `max_delay`);
- permanent failure (SMTP 5xx such as 550) or the last allowed attempt failed: the row becomes
  `dead` and, in the same transaction, an alert to the fallback address is queued with its own
  dedup key (`dead-letter:<Message-ID>:<requeues>`). An alert that itself dies is only logged.

Order: a case's messages go in the order they were queued. A message is not due while an earlier
one of the same case is still pending, whether it is being sent or held back for a retry, so one
case's mail held back delays that case's later mail (and no one else's).

Claiming (why this and not `SELECT ... FOR UPDATE SKIP LOCKED`): a process claims a due row with
one conditional UPDATE, a compare-and-set on the attempt counter it read:

    UPDATE outbox SET attempts = attempts + 1, next_attempt_at = now + lease
    WHERE id = :id AND status = 'pending' AND attempts = :seen AND next_attempt_at <= :now

and commits before it talks to the mail server. If two processes race for a row, the database
serialises the two UPDATEs and the second matches nothing (its `attempts` is stale), so it skips
the row. The lease (`next_attempt_at` pushed into the future) keeps the row away from everyone
else while the SMTP exchange runs, without holding a transaction or a row lock across network
I/O, and it works the same on SQLite (which has no row locks or SKIP LOCKED) and PostgreSQL. If the
process dies mid-send, the lease expires and another run picks the row up again, with the attempt
already counted, so a message that crashes its sender every time still ends as a dead letter. The
lease must be longer than an SMTP exchange can take (the default, five minutes, is thirty times
the default SMTP timeout).

Exactly once, and the one duplicate that cannot be avoided: SMTP has no two-phase commit. If the
process dies after the server accepted a message (its reply to DATA) but before the row is marked
sent, the message is sent again once the lease expires. The copy is byte-for-byte the same message
with the same fixed `Message-ID` (derived from the dedup key) and the same `Date` (the time it was
queued), so a receiving system can drop it: keep the Message-IDs seen in recent days and discard a
message whose Message-ID is already there (a Sieve `duplicate` test, RFC 7352; procmail's
`formail -D`; Exchange and Gmail already collapse identical Message-IDs in a mailbox; a ticketing
system should key on the header). The window is one SMTP reply wide.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, update
from sqlalchemy.orm import Session, aliased

from models.clock import Clock
from models.tables import OutboxMessage, OutboxStatus
from tasks.mail.messages import dead_letter_alert_email, refused_recipients_alert_email
from tasks.mail.outbox import as_utc, outgoing_email, queue_email
from tasks.mail.sender import DeliveryError, OutgoingEmail, Sender, SendResult
from tasks.store.db import Store

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 12
DEFAULT_BATCH_SIZE = 100
DEFAULT_BASE_DELAY = timedelta(seconds=30)
DEFAULT_MAX_DELAY = timedelta(hours=1)
DEFAULT_LEASE = timedelta(minutes=5)

# Alerts about undeliverable mail are not themselves alerted on, or a broken fallback address
# would feed a loop of alerts about alerts.
ALERT_EVENTS = frozenset({"dead-letter-alert", "recipients-refused-alert"})
_LAST_ERROR_LIMIT = 300


class DeliveryReport(BaseModel):
    """What one delivery run did, in counts only (safe to log and to show in Prefect)."""

    model_config = ConfigDict(frozen=True)

    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    dead: int = 0
    alerts_queued: int = 0
    lost_claims: int = 0
    stopped_early: bool = False


@dataclass(slots=True)
class _Counts:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    dead: int = 0
    alerts_queued: int = 0
    lost_claims: int = 0
    stopped_early: bool = False

    def report(self) -> DeliveryReport:
        return DeliveryReport(claimed=self.claimed, sent=self.sent, retrying=self.retrying,
                              dead=self.dead, alerts_queued=self.alerts_queued,
                              lost_claims=self.lost_claims, stopped_early=self.stopped_early)


@dataclass(frozen=True, slots=True)
class _Claim:
    id: int
    attempts: int  # including this one
    event: str
    case_ref: str | None
    case_id: int | None
    requeues: int
    email: OutgoingEmail


def backoff(attempts: int, *, base_delay: timedelta, max_delay: timedelta) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt: doubling from `base_delay`."""
    exponent = min(max(attempts - 1, 0), 30)  # 2**30 times any sane base is far past any cap
    return min(base_delay * (1 << exponent), max_delay)


def deliver_pending(store: Store, sender: Sender, *, now: Callable[[], datetime] | Clock,
                    fallback_address: str, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                    batch_size: int = DEFAULT_BATCH_SIZE, base_delay: timedelta = DEFAULT_BASE_DELAY,
                    max_delay: timedelta = DEFAULT_MAX_DELAY, lease: timedelta = DEFAULT_LEASE,
                    dashboard_url: str | None = None,
                    after_accept: Callable[[int], None] | None = None) -> DeliveryReport:
    """Send every due outbox message, at most `batch_size` of them, and record each outcome.

    Safe to run from several processes at once (see the module docstring). Alerts queued during
    the run are delivered in the same run when there is room in the batch. The run stops early,
    leaving the rest queued, when a failure would hit every message alike (the server is down,
    login refused), so an outage costs one connection attempt per run, not one per message.

    `now` is the case clock (or a callable returning an aware timestamp); `base_delay`,
    `max_delay` and `lease` are wall-clock durations, converted to case time for a scaled clock.
    `after_accept(outbox_id)` is
    a test seam that runs after the server accepted a message and before it is marked sent; an
    exception there propagates, as a crash would.
    """
    if max_attempts < 1 or batch_size < 1:
        raise ValueError("max_attempts and batch_size must be at least 1")
    read_clock: Callable[[], datetime]
    if callable(now):
        read_clock = now
    else:
        read_clock = now.now
        # Rows are stamped in case time, but a mail server recovers in wall time: with a scaled
        # clock, the waits are stretched into case time so that they last as long on the wall.
        case_per_wall = 1.0 / now.wall_seconds(1.0)
        base_delay, max_delay, lease = (base_delay * case_per_wall, max_delay * case_per_wall,
                                        lease * case_per_wall)
    counts = _Counts()
    handled: set[int] = set()
    while counts.claimed + counts.lost_claims < batch_size and not counts.stopped_early:
        due = _due(store, now=read_clock(), limit=batch_size - counts.claimed - counts.lost_claims,
                   skip=handled)
        if not due:
            break
        for outbox_id, seen_attempts in due:
            handled.add(outbox_id)
            if seen_attempts >= max_attempts:
                # Claimed max_attempts times with no outcome recorded: its sender kept dying.
                if _bury_exhausted(store, outbox_id, seen_attempts, now=read_clock(),
                                   fallback_address=fallback_address, dashboard_url=dashboard_url,
                                   counts=counts):
                    counts.dead += 1
                continue
            claim = _claim(store, outbox_id, seen_attempts, now=read_clock(), lease=lease)
            if claim is None:
                counts.lost_claims += 1
                continue
            counts.claimed += 1
            try:
                result = sender.send(claim.email)
            except DeliveryError as failure:
                _record_failure(store, claim, failure, now=read_clock(), max_attempts=max_attempts,
                                base_delay=base_delay, max_delay=max_delay,
                                fallback_address=fallback_address, dashboard_url=dashboard_url,
                                counts=counts)
                if failure.connection_level:
                    counts.stopped_early = True
                    break
                continue
            if after_accept is not None:
                after_accept(claim.id)
            _mark_sent(store, claim, result, now=read_clock(), fallback_address=fallback_address,
                       dashboard_url=dashboard_url, counts=counts)
            counts.sent += 1
    report = counts.report()
    log.info("outbox delivery: %d sent, %d retrying, %d dead, %d alerts queued, %d lost claims%s",
             report.sent, report.retrying, report.dead, report.alerts_queued, report.lost_claims,
             ", stopped early" if report.stopped_early else "")
    return report


def _due(store: Store, *, now: datetime, limit: int, skip: set[int]) -> list[tuple[int, int]]:
    # A case's mail goes in the order it was written: a message waits while an earlier one of its
    # case is pending (being sent, or held back for a retry). Timers that fire together after an
    # outage write reminder, overdue alert and escalation in one go; sent by two runs at once, the
    # escalation could otherwise reach the SBU before the alert it follows.
    earlier = aliased(OutboxMessage)
    ahead = (select(earlier.id)
             .where(earlier.case_id == OutboxMessage.case_id, earlier.id < OutboxMessage.id,
                    earlier.status == OutboxStatus.PENDING)
             .exists())
    with store.reading() as session:
        query = (select(OutboxMessage.id, OutboxMessage.attempts)
                 .where(OutboxMessage.status == OutboxStatus.PENDING,
                        OutboxMessage.next_attempt_at <= as_utc(now), ~ahead)
                 .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
                 .limit(limit + len(skip)))
        rows = [(int(row_id), int(attempts)) for row_id, attempts in session.execute(query).all()]
    # A row already handled in this run and due again (a zero backoff) waits for the next run.
    return [row for row in rows if row[0] not in skip][:limit]


def _claim(store: Store, outbox_id: int, seen_attempts: int, *, now: datetime,
           lease: timedelta) -> _Claim | None:
    moment = as_utc(now)
    with store.transaction() as session:
        # The UPDATE comes first in its transaction: on SQLite it takes the write lock before
        # reading, so the condition is checked against the newest committed row.
        claimed = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == outbox_id, OutboxMessage.status == OutboxStatus.PENDING,
                   OutboxMessage.attempts == seen_attempts, OutboxMessage.next_attempt_at <= moment)
            .values(attempts=seen_attempts + 1, next_attempt_at=moment + lease)
            .execution_options(synchronize_session=False)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            return None
        row = session.get_one(OutboxMessage, outbox_id, populate_existing=True)
        return _Claim(id=row.id, attempts=row.attempts, event=row.event, case_ref=row.case_ref,
                      case_id=row.case_id, requeues=row.requeues, email=outgoing_email(row))


def _mark_sent(store: Store, claim: _Claim, result: SendResult, *, now: datetime,
               fallback_address: str, dashboard_url: str | None, counts: _Counts) -> None:
    moment = as_utc(now)
    note = f"accepted; refused for {len(result.refused)} recipient(s)" if result.refused else None
    with store.transaction() as session:
        # Not guarded by the attempt count: whoever saw the server accept it, it was sent.
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == claim.id, OutboxMessage.status == OutboxStatus.PENDING)
            .values(status=OutboxStatus.SENT, sent_at=moment, last_error=note)
            .execution_options(synchronize_session=False)
        )
        if result.refused and claim.event not in ALERT_EVENTS:
            alert = refused_recipients_alert_email(
                outbox_id=claim.id, message_id=claim.email.message_id, event=claim.event,
                case_ref=claim.case_ref, refused=result.refused, fallback_address=fallback_address,
                dashboard_url=dashboard_url)
            if queue_email(session, alert, case_id=claim.case_id, now=moment,
                           mail_from_domain=_domain_of(claim.email.message_id)):
                counts.alerts_queued += 1


def _record_failure(store: Store, claim: _Claim, failure: DeliveryError, *, now: datetime,
                    max_attempts: int, base_delay: timedelta, max_delay: timedelta,
                    fallback_address: str, dashboard_url: str | None, counts: _Counts) -> None:
    moment = as_utc(now)
    error = f"attempt {claim.attempts}: {failure.summary}"[:_LAST_ERROR_LIMIT]
    if failure.permanent or claim.attempts >= max_attempts:
        log.warning("outbox %d (%s) is a dead letter after %d attempt(s): code %s",
                    claim.id, claim.event, claim.attempts, failure.code)
        with store.transaction() as session:
            if _bury(session, claim.id, claim.attempts, error=error):
                counts.dead += 1
                _queue_dead_letter_alert(session, claim, error=error, now=moment,
                                         fallback_address=fallback_address,
                                         dashboard_url=dashboard_url, counts=counts)
        return
    delay = backoff(claim.attempts, base_delay=base_delay, max_delay=max_delay)
    log.info("outbox %d (%s) attempt %d failed (code %s); next try in %s",
             claim.id, claim.event, claim.attempts, failure.code, delay)
    with store.transaction() as session:
        # Guarded by the attempt count: if our lease ran out and another process has claimed the
        # row since, its outcome is the one that counts.
        result = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == claim.id, OutboxMessage.status == OutboxStatus.PENDING,
                   OutboxMessage.attempts == claim.attempts)
            .values(next_attempt_at=moment + delay, last_error=error)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) == 1:
            counts.retrying += 1


def _bury(session: Session, outbox_id: int, attempts: int, *, error: str) -> bool:
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == outbox_id, OutboxMessage.status == OutboxStatus.PENDING,
               OutboxMessage.attempts == attempts)
        .values(status=OutboxStatus.DEAD, last_error=error)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def _bury_exhausted(store: Store, outbox_id: int, attempts: int, *, now: datetime,
                    fallback_address: str, dashboard_url: str | None, counts: _Counts) -> bool:
    moment = as_utc(now)
    error = f"no outcome recorded after {attempts} attempt(s); the sending process kept stopping"
    with store.transaction() as session:
        if not _bury(session, outbox_id, attempts, error=error):
            return False
        row = session.get_one(OutboxMessage, outbox_id, populate_existing=True)
        claim = _Claim(id=row.id, attempts=row.attempts, event=row.event, case_ref=row.case_ref,
                       case_id=row.case_id, requeues=row.requeues, email=outgoing_email(row))
        log.warning("outbox %d (%s) is a dead letter: %d claims without an outcome",
                    outbox_id, row.event, attempts)
        _queue_dead_letter_alert(session, claim, error=error, now=moment,
                                 fallback_address=fallback_address, dashboard_url=dashboard_url,
                                 counts=counts)
    return True


def _queue_dead_letter_alert(session: Session, claim: _Claim, *, error: str, now: datetime,
                             fallback_address: str, dashboard_url: str | None,
                             counts: _Counts) -> None:
    if claim.event in ALERT_EVENTS:
        log.error("outbox %d: an alert about undeliverable mail could not be delivered either; "
                  "check the fallback address and the mail server", claim.id)
        return
    alert = dead_letter_alert_email(
        outbox_id=claim.id, message_id=claim.email.message_id, event=claim.event,
        case_ref=claim.case_ref, attempts=claim.attempts, error=error,
        fallback_address=fallback_address, generation=claim.requeues, dashboard_url=dashboard_url)
    if queue_email(session, alert, case_id=claim.case_id, now=now,
                   mail_from_domain=_domain_of(claim.email.message_id)):
        counts.alerts_queued += 1


def _domain_of(message_id: str) -> str:
    return message_id.strip("<>").rpartition("@")[2] or "localhost"
