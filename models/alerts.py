"""When people are reminded, alerted and escalated to about a step (its deadline timers).

A reminder goes one working day before the due date, an overdue alert as soon as the due date has
ended (London time), then an escalation to the DSPs on each following working day until the step is
done. Every time here is case time; turning it into wall time is the clock's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from pydantic import BaseModel, ConfigDict, Field

from models.calendar import WorkingDayCalendar, end_of_london_day, london_time
from models.effects import Effect, RepairRun, RunRepairedMail, SendEmail
from models.enums import RunLoss, TimerKind


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


def timer_key(*, case_ref: str, step: str, subject: str, kind: TimerKind, sequence: int, due: date) -> str:
    """A timer's key: stable, and Prefect-safe (lowercase letters, digits and dashes), because it is
    also the idempotency key of its deadline-check run, so a timer can be scheduled any number of
    times and exist once. The due date is in it, so a re-timed item's new timers are new runs."""
    item = f"{step}-{subject}" if subject else step
    return f"{case_ref.lower()}-{item}-{kind.value}-{sequence}-{due.strftime('%Y%m%d')}"


def run_repair(*, process: str, loss: RunLoss, replaced: str, replacement: str) -> list[Effect]:
    """What the store writes when a run Prefect lost (`replaced`) has been replaced: the store
    points at `replacement` (an audit event says why) and the SBU is alerted by email. The email
    is keyed by the lost run, so a repair that is retried alerts once."""
    return [RepairRun(process=process, loss=loss, replaced=replaced, replacement=replacement),
            SendEmail(RunRepairedMail(process=process, loss=loss, replaced=replaced))]
