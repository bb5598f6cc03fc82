"""When the scheduled deployments do their work: working days only, the first working day of the
month, the first working day of April, and the reporting year before a day. Pure."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.calendar import WorkingDayCalendar
from models.processes import SYSTEM_FLOWS
from models.registry import SystemFlow
from models.schedules import (
    DAILY_DIGEST_CRON,
    MONTH_START_WINDOW,
    PROGRESS_SUMMARY_CRON,
    SCHEDULE_TIMEZONE,
    YEARLY_REPORT_CRON,
    Period,
    closed_because,
    first_working_day_of_month,
    is_month_start,
    reporting_year_before,
    run_day,
)

CALENDAR = WorkingDayCalendar()


@pytest.mark.parametrize(("day", "why"), [
    (date(2027, 1, 21), None),                                   # a Thursday
    (date(2026, 12, 25), "bank holiday (Christmas Day)"),
    (date(2026, 12, 28), "bank holiday (Boxing Day (observed))"),
    (date(2027, 3, 26), "bank holiday (Good Friday)"),
    (date(2027, 1, 23), "Saturday"),
    (date(2027, 1, 24), "Sunday"),
])
def test_a_run_day_says_why_it_is_not_a_working_day(day: date, why: str | None) -> None:
    assert closed_because(day, CALENDAR) == why
    assert run_day(day, CALENDAR).working is (why is None)


def test_a_closure_day_is_not_a_working_day() -> None:
    closed = WorkingDayCalendar(closure_days=[date(2027, 1, 21)])
    assert closed_because(date(2027, 1, 21), closed) == "closure day"
    assert not run_day(date(2027, 1, 21), closed).working


@pytest.mark.parametrize(("day", "first"), [
    (date(2027, 2, 17), date(2027, 2, 1)),   # Monday 1 February
    (date(2027, 1, 9), date(2027, 1, 4)),    # Fri 1 Jan is New Year's Day; then the weekend
    (date(2028, 4, 20), date(2028, 4, 3)),   # Sat 1 April
    (date(2021, 5, 31), date(2021, 5, 4)),   # Sat 1 May, Mon 3 May the Early May bank holiday
])
def test_the_first_working_day_of_a_month(day: date, first: date) -> None:
    assert first_working_day_of_month(day, CALENDAR) == first
    assert is_month_start(first, CALENDAR)
    assert not is_month_start(first + timedelta(days=1), CALENDAR)
    assert not is_month_start(first - timedelta(days=1), CALENDAR)


def test_a_closure_day_moves_the_month_start_to_the_next_working_day() -> None:
    closed = WorkingDayCalendar(closure_days=[date(2027, 2, 1)])
    assert not is_month_start(date(2027, 2, 1), closed)
    assert is_month_start(date(2027, 2, 2), closed)


def test_a_partnership_closed_all_the_first_week_gets_its_summary_on_the_last_day_of_the_window() -> None:
    # March 2027 opens on a Monday; closed Monday 1 to Monday 8: the summary goes on Sunday the 7th,
    # the cron's last day that month, rather than not at all.
    closed = WorkingDayCalendar(closure_days=[date(2027, 3, day) for day in range(1, 9)])
    assert first_working_day_of_month(date(2027, 3, 1), closed) == date(2027, 3, 9)
    assert [day for day in range(1, 32) if is_month_start(date(2027, 3, day), closed)] == [MONTH_START_WINDOW]


def test_the_yearly_report_is_written_on_aprils_month_start_only() -> None:
    assert run_day(date(2027, 4, 1), CALENDAR).year_start
    assert not run_day(date(2027, 4, 2), CALENDAR).year_start
    assert not run_day(date(2027, 3, 1), CALENDAR).year_start  # a month start, not April's
    assert run_day(date(2028, 4, 3), CALENDAR).year_start  # Sat 1, Sun 2 April 2028


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2075, 12, 31)))
def test_every_month_has_one_month_start_within_the_crons_window(day: date) -> None:
    first = day.replace(day=1)
    starts = [first + timedelta(days=n) for n in range(31)
              if (first + timedelta(days=n)).month == first.month
              and is_month_start(first + timedelta(days=n), CALENDAR)]
    assert len(starts) == 1
    assert starts[0].day <= MONTH_START_WINDOW  # bank holidays alone never push it past the window
    assert CALENDAR.is_working_day(starts[0])


@pytest.mark.parametrize(("day", "start", "end"), [
    (date(2027, 4, 1), date(2026, 4, 1), date(2027, 3, 31)),
    (date(2027, 3, 31), date(2025, 4, 1), date(2026, 3, 31)),
    (date(2027, 12, 31), date(2026, 4, 1), date(2027, 3, 31)),
    (date(2028, 4, 3), date(2027, 4, 1), date(2028, 3, 31)),
])
def test_the_reporting_year_before_a_day(day: date, start: date, end: date) -> None:
    period = reporting_year_before(day)
    assert (period.start, period.end) == (start, end)
    assert period.label == f"{start.isoformat()}_{end.isoformat()}"
    assert end in period
    assert start in period
    assert start - timedelta(days=1) not in period


def test_a_period_cannot_end_before_it_starts() -> None:
    with pytest.raises(ValueError, match="cannot end before it starts"):
        Period(date(2027, 4, 1), date(2027, 3, 31))


def test_the_scheduled_flows_run_at_eight_in_london_on_the_days_that_can_be_theirs() -> None:
    crons = {flow.name: (flow.cron, flow.timezone) for flow in SYSTEM_FLOWS if flow.cron}
    assert crons == {
        "daily-digest": ("0 8 * * 1-5", "Europe/London"),
        "progress-summary": ("0 8 1-7 * *", "Europe/London"),
        "yearly-report": ("0 8 1-7 4 *", "Europe/London"),
    }
    named = (DAILY_DIGEST_CRON, PROGRESS_SUMMARY_CRON, YEARLY_REPORT_CRON)
    assert tuple(cron for cron, _ in crons.values()) == named
    assert SCHEDULE_TIMEZONE == "Europe/London"
    # The sweeps keep their intervals.
    assert {flow.name: flow.every_seconds for flow in SYSTEM_FLOWS if flow.every_seconds} == {
        "deliver-outbox": 300, "reconcile": 600}


def test_a_system_flow_has_an_interval_or_a_cron() -> None:
    with pytest.raises(ValueError, match="not both"):
        SystemFlow("both", "flows.x:y", (), every_seconds=60, cron="0 8 * * *")
    with pytest.raises(ValueError, match="five fields"):
        SystemFlow("short", "flows.x:y", (), cron="0 8 * *")
    assert SystemFlow("sweep", "flows.x:y", (), every_seconds=60).timezone is None
