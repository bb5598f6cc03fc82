"""The working-day calendar that every statutory clock counts in.

A working day is Monday to Friday, excluding England and Wales bank holidays (the `holidays`
package, country GB, subdivision ENG) and the partnership's own closure days. Counting follows
docs/procedure.md: the trigger day is day 0 whatever kind of day it is, and "N working days after D" is
the Nth working day strictly after D. Timestamps are converted to Europe/London before their date
is taken, so a referral at 23:30 UTC on a summer evening counts from the next London date.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")

# Guards the search loops: no run of non-working days in England is anywhere near this long, so
# reaching it means the closure days are misconfigured rather than a real calendar.
_MAX_CONSECUTIVE_CLOSED_DAYS = 366


def london_date(moment: datetime) -> date:
    """The calendar date of `moment` in Europe/London. Naive timestamps are refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("timestamp must carry a timezone offset")
    return moment.astimezone(LONDON).date()


def end_of_london_day(day: date) -> datetime:
    """The instant a step due on `day` becomes late: midnight at the end of that London date, in UTC."""
    next_midnight = datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=LONDON)
    return next_midnight.astimezone(UTC)


def london_time(day: date, at: time) -> datetime:
    """`day` at wall-clock time `at` in London, as an aware UTC timestamp."""
    return datetime.combine(day, at, tzinfo=LONDON).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class BankHolidayTable:
    """England and Wales bank holidays over a span of years, exactly as `holidays` gives them;
    a precomputed copy spares a command the package's ~75 ms load (see `tasks.holiday_cache`)."""

    first_year: int
    last_year: int
    days: Mapping[date, str]

    def covers(self, day: date) -> bool:
        return self.first_year <= day.year <= self.last_year


def live_bank_holidays() -> Mapping[date, str]:
    """England and Wales bank holidays from the `holidays` package (GB, subdivision ENG), for any
    year asked about."""
    # Imported here so that code which never counts a day does not pay for the package.
    import holidays

    calendar: Mapping[date, str] = holidays.country_holidays("GB", subdiv="ENG")
    return calendar


def bank_holiday_table(first_year: int, last_year: int) -> BankHolidayTable:
    import holidays

    found = holidays.country_holidays("GB", subdiv="ENG", years=range(first_year, last_year + 1))
    return BankHolidayTable(first_year, last_year, {day: str(name) for day, name in found.items()})


class WorkingDayCalendar:
    """England and Wales working days, less the partnership's closure days.

    Bank holidays come from `table` (loaded on first use) for the years it covers, and from the
    `holidays` package for any other year."""

    def __init__(self, *, closure_days: Iterable[date] = (),
                 table: Callable[[], BankHolidayTable] | None = None) -> None:
        self._closure_days = frozenset(closure_days)
        self._load_table = table

    @cached_property
    def _table(self) -> BankHolidayTable | None:
        return self._load_table() if self._load_table is not None else None

    @cached_property
    def _live(self) -> Mapping[date, str]:
        return live_bank_holidays()

    def _holidays_for(self, day: date) -> Mapping[date, str]:
        table = self._table
        return table.days if table is not None and table.covers(day) else self._live

    @property
    def closure_days(self) -> frozenset[date]:
        return self._closure_days

    def bank_holiday_name(self, day: date) -> str | None:
        """The bank holiday's name on `day`, or None."""
        name = self._holidays_for(day).get(day)
        return str(name) if name else None

    def is_working_day(self, day: date) -> bool:
        if day.weekday() >= 5:
            return False
        if day in self._closure_days:
            return False
        return day not in self._holidays_for(day)

    def add_working_days(self, start: date, days: int) -> date:
        """The `days`-th working day strictly after `start` (which counts as day 0)."""
        if days < 1:
            raise ValueError("a clock counts at least one working day")
        return self._walk(start, days, step=1)

    def subtract_working_days(self, end: date, days: int) -> date:
        """The `days`-th working day strictly before `end`."""
        if days < 1:
            raise ValueError("a clock counts at least one working day")
        return self._walk(end, days, step=-1)

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after `day`."""
        return self._walk(day, 1, step=1)

    def working_days_between(self, start: date, end: date) -> int:
        """How many working days lie in (start, end]: 0 when end is not after start."""
        count = 0
        day = start
        while day < end:
            day += timedelta(days=1)
            if self.is_working_day(day):
                count += 1
        return count

    def _walk(self, origin: date, days: int, *, step: int) -> date:
        day = origin
        remaining = days
        closed_run = 0
        while remaining:
            day += timedelta(days=step)
            if self.is_working_day(day):
                remaining -= 1
                closed_run = 0
            else:
                closed_run += 1
                if closed_run > _MAX_CONSECUTIVE_CLOSED_DAYS:
                    raise ValueError("no working day within a year: check the closure days")
        return day
