"""The cached bank holiday table is the `holidays` package's answer, and a calendar built on it
counts exactly as one that asks the package."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from models.calendar import WorkingDayCalendar, live_bank_holidays
from tasks.holiday_cache import FIRST_YEAR, LAST_YEAR, load_bank_holidays


def test_the_table_is_the_packages_answer_for_every_year(tmp_path: Path) -> None:
    table = load_bank_holidays(tmp_path)
    live = live_bank_holidays()
    day = date(FIRST_YEAR, 1, 1)
    while day.year <= LAST_YEAR:
        assert table.days.get(day) == live.get(day), day
        day += timedelta(days=1)


def test_the_table_is_saved_and_read_back(tmp_path: Path) -> None:
    made = load_bank_holidays(tmp_path)
    [saved] = tmp_path.glob("bank-holidays-eng-*.json")
    assert load_bank_holidays(tmp_path) == made
    saved.write_text("{not json")
    assert load_bank_holidays(tmp_path) == made  # a damaged copy is made again
    assert json.loads(saved.read_text())["first_year"] == FIRST_YEAR


def test_a_calendar_on_the_table_counts_as_the_package_does(tmp_path: Path) -> None:
    cached = WorkingDayCalendar(closure_days=[date(2026, 12, 29)], table=lambda: load_bank_holidays(tmp_path))
    live = WorkingDayCalendar(closure_days=[date(2026, 12, 29)])
    for start in (date(2026, 12, 18) + timedelta(days=n) for n in range(40)):
        for days in (1, 5, 8, 15):
            assert cached.add_working_days(start, days) == live.add_working_days(start, days)
    # Outside the table's years the package is asked.
    assert cached.bank_holiday_name(date(2090, 12, 25)) == live.bank_holiday_name(date(2090, 12, 25))
