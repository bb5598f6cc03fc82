"""When the scheduled deployments run, and what a run makes of the day it wakes on.

Prefect fires each one by a cron in Europe/London (`CRONS`), but a cron knows weekdays, not bank
holidays or the partnership's closure days. So each cron wakes on every day that could be the one,
and the run asks the calendar here whether today is: the daily digest goes out on working days
only; the progress summary on the first working day of each month; the yearly report on the first
working day of April. Pure: the day and the calendar are passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from models.calendar import WorkingDayCalendar

SCHEDULE_TIMEZONE = "Europe/London"

# The first working day of a month is among its first seven days: bank holidays alone put it no
# later than the 5th in any year from 2000 to 2075 (4 to 5 June 2002, the Golden Jubilee), so
# seven days leave room for two closure days. A partnership closed for every working day of the
# first seven gets the month's summary on the 7th all the same (`is_month_start`), rather than
# none that month.
MONTH_START_WINDOW = 7
REPORTING_YEAR_FIRST_MONTH = 4  # 1 April to 31 March, as the national returns count

DAILY_DIGEST_CRON = "0 8 * * 1-5"
PROGRESS_SUMMARY_CRON = f"0 8 1-{MONTH_START_WINDOW} * *"
YEARLY_REPORT_CRON = f"0 8 1-{MONTH_START_WINDOW} {REPORTING_YEAR_FIRST_MONTH} *"


@dataclass(frozen=True, slots=True)
class Period:
    """The days from `start` to `end`, both included."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("a period cannot end before it starts")

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end

    @property
    def label(self) -> str:
        """How its files and keys name it: `2026-04-01_2027-03-31`."""
        return f"{self.start.isoformat()}_{self.end.isoformat()}"


def reporting_year_before(day: date) -> Period:
    """The last whole reporting year (1 April to 31 March) that ended before `day`."""
    end_year = day.year if day.month >= REPORTING_YEAR_FIRST_MONTH else day.year - 1
    return Period(date(end_year - 1, REPORTING_YEAR_FIRST_MONTH, 1),
                  date(end_year, REPORTING_YEAR_FIRST_MONTH, 1) - timedelta(days=1))


def closed_because(day: date, calendar: WorkingDayCalendar) -> str | None:
    """Why `day` is not a working day ("Saturday", "bank holiday (Good Friday)", "closure day"),
    or None when it is one."""
    if calendar.is_working_day(day):
        return None
    if day.weekday() >= 5:
        return f"{day:%A}"
    name = calendar.bank_holiday_name(day)
    if name is not None:
        return f"bank holiday ({name})"
    return "closure day"


def first_working_day_of_month(day: date, calendar: WorkingDayCalendar) -> date:
    """The first working day of the month `day` is in."""
    first = day.replace(day=1)
    return first if calendar.is_working_day(first) else calendar.next_working_day(first)


def is_month_start(day: date, calendar: WorkingDayCalendar) -> bool:
    """Whether the month's progress summary goes out on `day`: its first working day, or the last
    day of the cron's window when the partnership is closed for all of it."""
    first = first_working_day_of_month(day, calendar)
    if first.month == day.month and first.day <= MONTH_START_WINDOW:
        return day == first
    return day.day == MONTH_START_WINDOW


@dataclass(frozen=True, slots=True)
class RunDay:
    """What a scheduled run makes of the day it runs on (London date, from the case clock)."""

    day: date
    # Why it is not a working day, or None.
    closed: str | None
    month_start: bool

    @property
    def working(self) -> bool:
        return self.closed is None

    @property
    def year_start(self) -> bool:
        """Whether the yearly report is written today: the month start of April."""
        return self.month_start and self.day.month == REPORTING_YEAR_FIRST_MONTH


def run_day(day: date, calendar: WorkingDayCalendar) -> RunDay:
    return RunDay(day=day, closed=closed_because(day, calendar), month_start=is_month_start(day, calendar))
