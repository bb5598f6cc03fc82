"""How one item counts in a report: on time, late, open and overdue, open; and by how many working
days it was late. Pure: the figures for whole cases are checked on cases driven through the case
service in tests/tasks/test_reporting_figures.py."""

from __future__ import annotations

from datetime import date

import pytest

from models.calendar import WorkingDayCalendar
from models.enums import Anchor, StepState
from models.reporting import age_band, days_late, timing_of
from models.state import ItemState

CALENDAR = WorkingDayCalendar()
FRIDAY = date(2027, 1, 15)


def item(state: StepState, *, due: date = FRIDAY, done: date | None = None) -> ItemState:
    return ItemState(step="sin-submission", subject="", process="case", title="SIN", state=state,
                     anchor=Anchor.LA_AWARE, anchor_on=date(2027, 1, 8), due=due, rule="5 working days",
                     completed_on=done)


@pytest.mark.parametrize(("state", "done", "as_of", "timing"), [
    (StepState.DONE, FRIDAY, date(2027, 2, 1), "on-time"),          # on its due date
    (StepState.DONE, date(2027, 1, 16), date(2027, 2, 1), "late"),  # the Saturday after
    (StepState.OPEN, None, FRIDAY, "open"),                          # due today: not yet overdue
    (StepState.OPEN, None, date(2027, 1, 16), "open-overdue"),
    (StepState.CANCELLED, None, date(2027, 2, 1), "cancelled"),
])
def test_an_items_timing(state: StepState, done: date | None, as_of: date, timing: str) -> None:
    assert timing_of(item(state, done=done), as_of=as_of).value == timing


@pytest.mark.parametrize(("done", "late"), [
    (date(2027, 1, 16), 0),   # Saturday: late, by no working day
    (date(2027, 1, 18), 1),   # Monday
    (date(2027, 1, 22), 5),   # a week on
])
def test_lateness_counts_working_days_after_the_due_date(done: date, late: int) -> None:
    assert days_late(item(StepState.DONE, done=done), as_of=date(2027, 3, 1), calendar=CALENDAR) == late


def test_an_open_items_lateness_runs_to_the_report_date() -> None:
    # Due Thu 24 Dec 2026; 25 and 28 Dec are bank holidays: 29, 30, 31 Dec and 4 Jan.
    late = days_late(item(StepState.OPEN, due=date(2026, 12, 24)), as_of=date(2027, 1, 4), calendar=CALENDAR)
    assert late == 4


@pytest.mark.parametrize(("age", "band"), [(0, "0-5"), (5, "0-5"), (6, "6-20"), (20, "6-20"), (21, "21-60"),
                                           (60, "21-60"), (61, "over 60"), (400, "over 60")])
def test_action_age_bands(age: int, band: str) -> None:
    assert age_band(age) == band
