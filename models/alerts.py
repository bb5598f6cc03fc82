"""When people are reminded, alerted and escalated to about a step: its deadline timers.

A reminder goes one working day before the due date, an overdue alert as soon as the due date has
ended (London time), then an escalation to the DSPs on each following working day until the step is
done. Timers are fired in passes (`tasks.service.CaseService.fire_due_timers`); when a pass finds
several of an item's alerts due at once (after an outage, say), only the latest goes out
(`collapse_due`). Every time here is case time; turning it into wall time is the clock's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from models.calendar import WorkingDayCalendar, end_of_london_day, london_time
from models.enums import RunLoss, TimerKind

if TYPE_CHECKING:
    from models.effects import DueTimer, Effect


class AlertPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    reminder_working_days_before: int = Field(1, ge=1, le=10)
    reminder_time: time = time(9, 0)
    overdue_delay_minutes: int = Field(1, ge=0, le=24 * 60)
    escalation_time: time = time(9, 0)
    max_escalations: int = Field(20, ge=0, le=250)


@dataclass(frozen=True, slots=True)
class PlannedAlert:
    kind: TimerKind
    sequence: int
    fire_at: datetime
    on: date  # the London date the alert is about (the working day of an escalation)


def planned_alerts(*, due: date, now: datetime, calendar: WorkingDayCalendar,
                   policy: AlertPolicy) -> list[PlannedAlert]:
    """The alerts to schedule when a step due on `due` opens at `now`. A reminder whose time has
    already passed is left out: a step opened on the day before it is due needs no reminder."""
    alerts: list[PlannedAlert] = []
    reminder_day = calendar.subtract_working_days(due, policy.reminder_working_days_before)
    reminder_at = london_time(reminder_day, policy.reminder_time)
    if reminder_at > now:
        alerts.append(PlannedAlert(TimerKind.REMINDER, 0, reminder_at, reminder_day))
    overdue_at = end_of_london_day(due) + timedelta(minutes=policy.overdue_delay_minutes)
    alerts.append(PlannedAlert(TimerKind.OVERDUE, 0, overdue_at, due))
    first = next_escalation(after=due, sequence=1, calendar=calendar, policy=policy)
    if first is not None:
        alerts.append(first)
    return alerts


def next_escalation(*, after: date, sequence: int, calendar: WorkingDayCalendar,
                    policy: AlertPolicy) -> PlannedAlert | None:
    """The escalation numbered `sequence`, on the first working day after `after`; None once the
    policy's limit is reached (by then the case is a matter for the partnership, not a timer)."""
    if sequence > policy.max_escalations:
        return None
    day = calendar.next_working_day(after)
    return PlannedAlert(TimerKind.ESCALATION, sequence, london_time(day, policy.escalation_time), day)


# Of two alerts of one item due at the same moment, the later in this order is the later alert.
_KIND_ORDER = {TimerKind.REMINDER: 0, TimerKind.OVERDUE: 1, TimerKind.ESCALATION: 2}


@dataclass(frozen=True, slots=True)
class Collapsed:
    """What one item's alerts due at once come to: the one that goes out, the earlier ones it
    supersedes, and the escalation to plan next (None when none is to be planned)."""

    fires: DueTimer
    superseded: tuple[DueTimer, ...]
    next_escalation: PlannedAlert | None


def collapse_due(due: Sequence[DueTimer], *, today: date, calendar: WorkingDayCalendar,
                 policy: AlertPolicy) -> Collapsed:
    """The alerts of one open item that a pass finds due together. Only the latest goes out (it
    says how late the item is); the earlier ones are superseded, since a reminder or an overdue
    alert sent beside the escalation that follows it tells nobody anything more. An escalation that
    goes out has the next one planned from `today`, not from the day it was planned for: a pass
    after an outage then sends one escalation for the item, not one for every working day missed."""
    if not due:
        raise ValueError("an item with no alert due has nothing to collapse")
    ordered = sorted(due, key=lambda timer: (timer.fire_at, _KIND_ORDER[timer.kind], timer.sequence))
    latest = ordered[-1]
    nxt = None
    if latest.kind is TimerKind.ESCALATION:
        nxt = next_escalation(after=today, sequence=latest.sequence + 1, calendar=calendar, policy=policy)
    return Collapsed(fires=latest, superseded=tuple(ordered[:-1]), next_escalation=nxt)


def working_days_late(*, due: date, today: date, calendar: WorkingDayCalendar) -> int:
    """How late an item due by the end of `due` is on `today`: the working days after `due` up to
    and including `today` (0 on the due date itself, or on a weekend straight after it)."""
    return calendar.working_days_between(due, today)


def timer_key(*, case_ref: str, step: str, subject: str, kind: TimerKind, sequence: int, due: date) -> str:
    """A timer's key: stable and unique in the store, and readable in logs (lowercase letters,
    digits and dashes; the case reference, the item, the kind and the dates, nothing personal).
    The due date is in it, so a re-timed item's new timers are new rows."""
    item = f"{step}-{subject}" if subject else step
    return f"{case_ref.lower()}-{item}-{kind.value}-{sequence}-{due.strftime('%Y%m%d')}"


def run_repair(*, process: str, loss: RunLoss, replaced: str, replacement: str) -> list[Effect]:
    """What the store writes when a run Prefect lost (`replaced`) has been replaced: the store
    points at `replacement` (an audit event says why) and the SBU is alerted by email. The email
    is keyed by the lost run, so a repair that is retried alerts once."""
    # Imported here: the settings read this module for `AlertPolicy`, and `sbu status` and
    # `sbu timetable` (which read the settings) have no use for the effects.
    from models.effects import RepairRun, RunRepairedMail, SendEmail

    return [RepairRun(process=process, loss=loss, replaced=replaced, replacement=replacement),
            SendEmail(RunRepairedMail(process=process, loss=loss, replaced=replaced))]
