"""What a scheduled run makes of its day, with the calendar a flow process builds from its settings:
England and Wales bank holidays and the partnership's closure days (`Settings(closure_days=...)`,
`SBU_CLOSURE_DAYS`) are skipped, and the month's first working day moves past them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from models.schedules import run_day
from models.settings import Settings
from tasks import runtime
from tasks.holiday_cache import calendar_for
from tasks.scheduled import read_run_day

# The partnership closes on Monday 4 January 2027, the first working day after New Year's Day.
CLOSED = date(2027, 1, 4)


def test_the_settings_calendar_skips_bank_holidays_and_closure_days(tmp_path: Path) -> None:
    calendar = calendar_for(Settings(data_dir=tmp_path, closure_days=(CLOSED,)))
    assert run_day(date(2026, 12, 25), calendar).closed == "bank holiday (Christmas Day)"
    assert run_day(date(2027, 1, 1), calendar).closed == "bank holiday (New Year's Day)"
    assert run_day(CLOSED, calendar).closed == "closure day"
    assert not run_day(CLOSED, calendar).month_start
    assert run_day(date(2027, 1, 5), calendar).month_start  # the month's first working day
    assert run_day(date(2027, 1, 5), calendar).working
    # Without the closure day, Monday is a working day and the month starts on it.
    assert run_day(CLOSED, calendar_for(Settings(data_dir=tmp_path))).month_start


@pytest.fixture
def flow_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The environment a served run's process reads its settings from, with the case clock at 08:00
    London on the closure day; the process's cached settings and service are dropped after."""
    monkeypatch.setenv("SBU_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SBU_CLOSURE_DAYS", CLOSED.isoformat())
    monkeypatch.setenv("SBU_TIME_EPOCH", datetime.now(UTC).isoformat())
    monkeypatch.setenv("SBU_TIME_START", datetime(2027, 1, 4, 8, 0, tzinfo=UTC).isoformat())
    for cached in (runtime.settings, runtime.registry, runtime.service):
        cached.cache_clear()
    yield
    runtime.service().store.dispose()
    for cached in (runtime.settings, runtime.registry, runtime.service):
        cached.cache_clear()


@pytest.mark.usefixtures("flow_process")
def test_a_runs_day_is_today_on_the_case_clock_in_the_partnerships_calendar() -> None:
    today = read_run_day.fn()
    assert (today.day, today.working, today.closed) == (CLOSED, False, "closure day")
    assert not today.month_start
    tomorrow = read_run_day.fn(day=date(2027, 1, 5))
    assert (tomorrow.working, tomorrow.month_start, tomorrow.year_start) == (True, True, False)
