"""`sbu serve` stopped for five working days of case time while a case's items are overdue, then
started again: the alerts missed collapse, so every item sends at most one overdue alert, and at
most one escalation for each working day that passes while serving, and no recipient is sent the
same item's escalation twice in a day. Everything through the real doors: `sbu serve` on a real
Prefect server, its timer pass, and a real SMTP sink."""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from email import message_from_bytes
from email.policy import default as default_policy

import pytest

from deployments.local import STALL_ALLOWANCE, LocalSystem, wait_until
from models.calendar import WorkingDayCalendar, london_date
from models.enums import Interface
from models.forms import parse_referral
from tasks.mail.sink import ReceivedMessage
from tasks.service import Actor, CaseService
from tasks.store.db import Store
from tests.conftest import EXAMPLE_REFERRAL
from tests.flows.conftest import SystemFactory
from tests.tasks.test_service import decision

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

# A case day in 3 s of wall time: the outage is five working days of sleep. A timer pass takes a
# second or two; one that takes longer than a case day on a busy machine sends the later day's
# escalation, never two, so only how many days the wait sees is at stake, not what it asserts.
SCALE = 28800
CASE_DAY = 24 * 3600 / SCALE
ITEMS = ("sin-submission", "partners-informed")
# An escalation names the working day it is for ("... for Monday 25 January 2027") and lists its
# items, one a line ("- <title> (<step>): was due ...").
FOR_DAY = re.compile(r"Partners for (\w+ \d+ \w+ \d{4})")
LISTED = re.compile(r"^- .*\(([a-z0-9:-]+)\): was due", re.MULTILINE)


def _text(message: ReceivedMessage) -> str:
    parsed = message_from_bytes(message.content, policy=default_policy)
    body = parsed.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def _case_time(system: LocalSystem) -> datetime:
    return system.settings().clock().now()


def _received(system: LocalSystem) -> list[ReceivedMessage]:
    """Every message the system's sink has taken, across its restarts (each a file of its folder)."""
    from email.utils import getaddresses

    found = []
    for path in sorted((system.data_dir / "mail").glob("*.eml")):
        content = path.read_bytes()
        parsed = message_from_bytes(content, policy=default_policy)
        recipients = tuple(address for _, address in getaddresses(
            [str(parsed.get("To", "")), str(parsed.get("Cc", ""))]) if address)
        found.append(ReceivedMessage(received_at=datetime.now(UTC), message_id=str(parsed["Message-ID"]),
                                     mail_from=str(parsed["From"]), recipients=recipients,
                                     subject=str(parsed["Subject"]), path=path, content=content))
    return found


def _day(message: ReceivedMessage) -> date:
    """The working day an escalation is for, as its text names it."""
    found = FOR_DAY.search(_text(message))
    assert found is not None, message.subject
    return datetime.strptime(found.group(1), "%A %d %B %Y").date()


def _escalation_days(system: LocalSystem, case_ref: str, *, since: date) -> set[date]:
    """The days from `since` on that the case was escalated, as far as the sink has seen."""
    return {day for m in _received(system) if f"[{case_ref}] ESCALATION:" in m.subject
            for day in [_day(m)] if day >= since}


def _superseded(system: LocalSystem, case_ref: str) -> Counter[str]:
    """The alerts recorded as superseded in the case's audit trail, by kind."""
    from sqlalchemy import select

    from models.tables import AuditEvent, Case

    store = Store(system.settings().sqlalchemy_url)
    try:
        with store.reading() as session:
            return Counter(session.scalars(
                select(AuditEvent.action).join(Case, Case.id == AuditEvent.case_id)
                .where(Case.case_ref == case_ref, AuditEvent.action.like("%-superseded"))))
    finally:
        store.dispose()


def _sleep_until(system: LocalSystem, moment: datetime) -> None:
    wall = system.settings().clock().wall_time_for(moment)
    time.sleep(max(0.0, (wall - datetime.now(UTC)).total_seconds()))


def test_an_outage_of_five_working_days_sends_each_alert_once_and_one_escalation_a_day(
        local_system: SystemFactory) -> None:
    # Case time starts at 04:00 on Monday 11 January 2027. The local authority became aware on
    # Monday 4th, so the SIN and the partners being informed are due by the end of Monday 11th:
    # overdue alerts Tuesday 00:01, an escalation each working day from Tuesday 12th at 09:00.
    # Serve's start takes a case day or more at this scale (a week on a busy machine), so whatever
    # it sends before it is stopped, the outage is counted from when it stopped.
    start = datetime(2027, 1, 11, 4, 0, tzinfo=UTC)
    # A delivery that the stop cuts off holds its row for the outbox's lease, and the case's later
    # mail waits behind it: five seconds here, not five minutes, so the escalations after the
    # restart are not held past the wait for them.
    system = local_system(time_scale=SCALE, case_start=start, serving=False,
                          extra_env={"SBU_OUTBOX_LEASE_SECONDS": "5", "SBU_OUTBOX_RETRY_SECONDS": "1",
                                     "SBU_OUTBOX_MAX_RETRY_SECONDS": "2"})
    system.data_dir.mkdir(parents=True, exist_ok=True)
    system.env["SBU_TIME_EPOCH"] = datetime.now(UTC).isoformat()  # serve has not read it yet
    settings = system.settings()
    store = Store(settings.sqlalchemy_url).migrate()
    try:
        service = CaseService(store=store, settings=settings, clock=settings.clock())
        referral = parse_referral(dict(EXAMPLE_REFERRAL, incident_date="2027-01-04",
                                       la_aware_date="2027-01-04", referred_at="2027-01-11T04:00:00+00:00"),
                                  now=start)
        officer = Actor("sbu-officer", Interface.CLI)
        case_ref = service.refer(referral, actor=officer).case_ref
        service.decide(case_ref, decision(sin=True, rapid_review=True, on=date(2027, 1, 11)), actor=officer)
        due = {t.step: t for t in service.timers(case_ref=case_ref) if t.kind.value == "overdue"}
        assert set(due) >= set(ITEMS)
    finally:
        store.dispose()
    calendar = WorkingDayCalendar()

    system.start()
    system.wait_for_wait(case_ref, "notification-", timeout=60 + STALL_ALLOWANCE)
    system.stop()  # as Ctrl-C would (killed if it takes too long: a busy machine)
    stopped_on = london_date(_case_time(system))
    before = _received(system)

    # Stopped for five whole working days of escalations (a week and a day from a weekday: seven
    # calendar days from one are only four working days between).
    restart_day = calendar.add_working_days(stopped_on, 6)
    _sleep_until(system, datetime.combine(restart_day, clock_time(10, 0), tzinfo=UTC))
    restarted_on = london_date(_case_time(system))
    assert calendar.working_days_between(stopped_on, restarted_on - timedelta(days=1)) >= 5
    system.start()
    # Serving until the escalations of the catch-up and two more working days have gone.
    wait_until(lambda: len(_escalation_days(system, case_ref, since=restarted_on)) >= 3,
               timeout=6 * CASE_DAY + STALL_ALLOWANCE, what="the escalations of the working days served")
    system.stop()
    ended_on = london_date(_case_time(system))

    mine = [m for m in _received(system) if f"[{case_ref}]" in m.subject]
    assert len(mine) >= len([m for m in before if f"[{case_ref}]" in m.subject])
    # At most one overdue alert an item, ever.
    overdue = Counter(step for m in mine if "] OVERDUE:" in m.subject
                      for step in ITEMS if f"({step})" in _text(m))
    assert all(count <= 1 for count in overdue.values()), overdue
    # The escalations: each names its working day and lists the items escalated.
    escalations = [(_day(m), LISTED.findall(_text(m)), m) for m in mine if "] ESCALATION:" in m.subject]
    for item in ITEMS:
        days = [day for day, listed, _ in escalations if item in listed]
        # At most one escalation an item a day.
        assert len(days) == len(set(days)), (item, days)
        # None for the days it was stopped: the catch-up is one escalation, for the day it went.
        assert not [day for day in days if stopped_on < day < restarted_on], (item, days, stopped_on)
        # At most one for each working day served after the restart, however many were missed.
        served = [day for day in days if day >= restarted_on]
        assert served, f"{item} was not escalated after the restart"
        assert len(served) <= calendar.working_days_between(restarted_on - timedelta(days=1), ended_on), (
            item, served, restarted_on, ended_on)
    # No recipient got the same item's escalation twice in a day.
    received = Counter((address, day, item) for day, listed, message in escalations for item in listed
                       for address in message.recipients)
    assert max(received.values()) == 1, [key for key, count in received.items() if count > 1]
    # The catch-up went as one email listing both items; any overdue alert it stood for is in the
    # audit trail as superseded.
    assert any(day >= restarted_on and set(ITEMS) <= set(listed) for day, listed, _ in escalations)
    superseded = _superseded(system, case_ref)
    assert superseded["overdue-superseded"] >= len(ITEMS) - sum(overdue.values()), superseded
