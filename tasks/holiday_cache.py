"""A precomputed copy of the England and Wales bank holidays, so that a command which counts
working days does not pay for loading the `holidays` package (about 75 ms, a third of
`sbu timetable`). The copy is made from the package itself and is keyed to the installed package
file, so upgrading `holidays` makes a new one; any year outside the copy asks the package."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from models.calendar import BankHolidayTable, WorkingDayCalendar, bank_holiday_table

if TYPE_CHECKING:
    from models.settings import Settings

FIRST_YEAR = 2000
LAST_YEAR = 2075


def _package_stamp() -> str:
    # find_spec locates the package without importing it: that is the whole point.
    spec = importlib.util.find_spec("holidays")
    origin = spec.origin if spec is not None and spec.origin else "unknown"
    mtime = os.stat(origin).st_mtime_ns if os.path.exists(origin) else 0
    return hashlib.sha256(f"{origin}:{mtime}".encode()).hexdigest()[:16]


def load_bank_holidays(cache_dir: Path) -> BankHolidayTable:
    """The cached table, made (and saved, where the directory is writable) if it is missing,
    unreadable or made from another version of the package."""
    path = cache_dir / f"bank-holidays-eng-{_package_stamp()}.json"
    try:
        raw = json.loads(path.read_text())
        return BankHolidayTable(int(raw["first_year"]), int(raw["last_year"]),
                                {date.fromisoformat(day): str(name) for day, name in raw["days"].items()})
    except (OSError, ValueError, KeyError, TypeError):
        pass
    table = bank_holiday_table(FIRST_YEAR, LAST_YEAR)
    payload = {"first_year": table.first_year, "last_year": table.last_year,
               "days": {day.isoformat(): name for day, name in sorted(table.days.items())}}
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(payload))
        partial.replace(path)  # atomic: a reader sees the old file or the whole new one
    except OSError:
        pass  # a read-only data directory only costs the speed-up
    return table


def calendar_for(settings: Settings) -> WorkingDayCalendar:
    """The partnership's working-day calendar: its closure days, and the bank holidays from the
    cached table under the data directory (made on first use)."""
    cache_dir = settings.data_dir / "cache"
    return WorkingDayCalendar(closure_days=settings.closure_days,
                              table=lambda: load_bank_holidays(cache_dir))
