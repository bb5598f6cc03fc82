"""The working-day calendar, checked against the real England and Wales bank holiday list.

Every expected date below was counted by hand from the GOV.UK list of bank holidays; the comment on
each row shows the count so that a reviewer can check it without running anything.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.calendar import LONDON, WorkingDayCalendar, end_of_london_day, london_date, london_time

MIN_DAY = date(2000, 1, 1)
MAX_DAY = date(2040, 12, 31)
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None)

# Shared across the module: the bank holiday table is built once per year and is read-only.
CALENDAR = WorkingDayCalendar()


def utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.tzinfo is not None, "test timestamps must be aware"
    return moment


# -- the bank holiday list itself ---------------------------------------------------------------

# Weekday bank holidays per year (the days a weekday is not a working day). Weekend-dated
# holidays (Christmas on a Saturday, say) are replaced by the substitute days listed here.
WEEKDAY_BANK_HOLIDAYS: dict[int, set[date]] = {
    2020: {date(2020, 1, 1), date(2020, 4, 10), date(2020, 4, 13),
           date(2020, 5, 8),  # early May bank holiday moved to Friday for VE Day 75
           date(2020, 5, 25), date(2020, 8, 31), date(2020, 12, 25),
           date(2020, 12, 28)},  # Boxing Day (Sat 26th) substitute
    2021: {date(2021, 1, 1), date(2021, 4, 2), date(2021, 4, 5), date(2021, 5, 3),
           date(2021, 5, 31), date(2021, 8, 30),
           date(2021, 12, 27), date(2021, 12, 28)},  # Christmas Sat, Boxing Day Sun: both substituted
    2022: {date(2022, 1, 3),  # New Year's Day (Sat) substitute
           date(2022, 4, 15), date(2022, 4, 18), date(2022, 5, 2),
           date(2022, 6, 2), date(2022, 6, 3),  # spring bank holiday moved; Platinum Jubilee
           date(2022, 8, 29),
           date(2022, 9, 19),  # state funeral of Queen Elizabeth II
           date(2022, 12, 26), date(2022, 12, 27)},  # Christmas Day (Sun) substitute on Tuesday
    2023: {date(2023, 1, 2),  # New Year's Day (Sun) substitute
           date(2023, 4, 7), date(2023, 4, 10), date(2023, 5, 1),
           date(2023, 5, 8),  # coronation of King Charles III
           date(2023, 5, 29), date(2023, 8, 28), date(2023, 12, 25), date(2023, 12, 26)},
    2026: {date(2026, 1, 1), date(2026, 4, 3), date(2026, 4, 6), date(2026, 5, 4),
           date(2026, 5, 25), date(2026, 8, 31), date(2026, 12, 25),
           date(2026, 12, 28)},  # Boxing Day (Sat) substitute
    2027: {date(2027, 1, 1), date(2027, 3, 26), date(2027, 3, 29), date(2027, 5, 3),
           date(2027, 5, 31), date(2027, 8, 30),
           date(2027, 12, 27), date(2027, 12, 28)},  # Christmas Sat, Boxing Day Sun
}


@pytest.mark.parametrize("year", sorted(WEEKDAY_BANK_HOLIDAYS))
def test_weekdays_that_are_not_working_days_are_exactly_the_bank_holidays(year: int) -> None:
    day = date(year, 1, 1)
    closed_weekdays: set[date] = set()
    while day.year == year:
        if day.weekday() < 5 and not CALENDAR.is_working_day(day):
            closed_weekdays.add(day)
        day += timedelta(days=1)
    assert closed_weekdays == WEEKDAY_BANK_HOLIDAYS[year]


@pytest.mark.parametrize(
    "day",
    sorted(d for days in WEEKDAY_BANK_HOLIDAYS.values() for d in days),
    ids=str,
)
def test_every_bank_holiday_has_a_name(day: date) -> None:
    assert CALENDAR.bank_holiday_name(day)


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 12, 24), True),  # Christmas Eve is not a bank holiday
        (date(2026, 12, 31), True),  # nor is New Year's Eve
        (date(2026, 12, 26), False),  # Boxing Day on a Saturday
        (date(2026, 3, 29), False),  # Sunday: BST starts
        (date(2026, 10, 25), False),  # Sunday: BST ends
        (date(2026, 3, 30), True),
        (date(2026, 10, 26), True),
        (date(2026, 4, 2), True),  # Maundy Thursday
        (date(2026, 4, 7), True),  # Tuesday after Easter Monday
    ],
    ids=str,
)
def test_is_working_day(day: date, working: bool) -> None:
    assert CALENDAR.is_working_day(day) is working


def test_an_ordinary_day_has_no_bank_holiday_name() -> None:
    assert CALENDAR.bank_holiday_name(date(2026, 12, 24)) is None


# -- counting working days ----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        # Christmas and New Year, with substitute days
        (date(2026, 12, 24), 1, date(2026, 12, 29)),  # Fri 25 hol, Sat/Sun, Mon 28 Boxing Day sub -> Tue 29
        (date(2026, 12, 23), 2, date(2026, 12, 29)),  # Thu 24 (1), Tue 29 (2)
        (date(2026, 12, 22), 5, date(2026, 12, 31)),  # 23 (1), 24 (2), 29 (3), 30 (4), 31 (5)
        (date(2026, 12, 23), 8, date(2027, 1, 7)),  # 24, 29, 30, 31, [1 Jan] Mon 4 (5), 5, 6, Thu 7 (8)
        (date(2026, 12, 31), 1, date(2027, 1, 4)),  # Fri 1 Jan hol -> Mon 4
        (date(2027, 12, 24), 1, date(2027, 12, 29)),  # Sat 25, Sun 26, Mon 27 + Tue 28 subs -> Wed 29
        (date(2027, 12, 23), 5, date(2028, 1, 4)),  # 24 (1), Wed 29 (2), 30, 31 (4), [Mon 3 sub] Tue 4 (5)
        (date(2027, 12, 31), 1, date(2028, 1, 4)),  # Sat 1 Jan, Mon 3 New Year sub -> Tue 4
        (date(2021, 12, 24), 1, date(2021, 12, 29)),  # Mon 27 + Tue 28 substitutes -> Wed 29
        (date(2021, 12, 31), 1, date(2022, 1, 4)),  # Sat 1 Jan, Mon 3 sub -> Tue 4
        (date(2022, 12, 23), 1, date(2022, 12, 28)),  # Mon 26 Boxing Day, Tue 27 Christmas sub -> Wed 28
        (date(2022, 12, 30), 1, date(2023, 1, 3)),  # Mon 2 Jan New Year sub -> Tue 3
        (date(2020, 12, 24), 1, date(2020, 12, 29)),  # Fri 25, Mon 28 Boxing Day sub -> Tue 29
        # Easter
        (date(2026, 4, 2), 1, date(2026, 4, 7)),  # Good Friday 3rd, Easter Monday 6th -> Tue 7
        (date(2026, 3, 31), 5, date(2026, 4, 9)),  # Wed 1 (1), Thu 2 (2), Tue 7 (3), Wed 8 (4), Thu 9 (5)
        (date(2027, 3, 25), 1, date(2027, 3, 30)),  # Good Friday 26th, Easter Monday 29th -> Tue 30
        (date(2025, 4, 17), 1, date(2025, 4, 22)),  # Good Friday 18th, Easter Monday 21st -> Tue 22
        # May bank holidays
        (date(2026, 5, 1), 1, date(2026, 5, 5)),  # Mon 4 May Day -> Tue 5
        (date(2026, 5, 22), 1, date(2026, 5, 26)),  # Mon 25 spring bank holiday -> Tue 26
        (date(2026, 4, 30), 16, date(2026, 5, 26)),  # 1 (1), [Mon 4] Tue 5..Fri 22 (15), [25] Tue 26 (16)
        (date(2027, 4, 30), 1, date(2027, 5, 4)),  # Mon 3 May Day -> Tue 4
        (date(2027, 5, 28), 1, date(2027, 6, 1)),  # Mon 31 spring bank holiday -> Tue 1 June
        (date(2020, 5, 7), 1, date(2020, 5, 11)),  # Fri 8 (VE Day) -> Mon 11
        (date(2022, 6, 1), 1, date(2022, 6, 6)),  # Thu 2 spring, Fri 3 Jubilee -> Mon 6
        # August
        (date(2026, 8, 28), 1, date(2026, 9, 1)),  # Mon 31 -> Tue 1 September
        (date(2027, 8, 27), 1, date(2027, 8, 31)),  # Mon 30 -> Tue 31
        # One-off bank holidays
        (date(2022, 9, 16), 1, date(2022, 9, 20)),  # Mon 19 state funeral -> Tue 20
        (date(2023, 5, 5), 1, date(2023, 5, 9)),  # Mon 8 coronation -> Tue 9
        # Ordinary weeks
        (date(2026, 6, 1), 5, date(2026, 6, 8)),  # Mon + 5 -> next Mon
        (date(2026, 6, 5), 1, date(2026, 6, 8)),  # Fri -> Mon
    ],
    ids=lambda value: str(value),
)
def test_add_working_days_across_bank_holidays(start: date, days: int, expected: date) -> None:
    assert CALENDAR.add_working_days(start, days) == expected


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (date(2026, 6, 6), 1, date(2026, 6, 8)),  # Saturday trigger is day 0 -> Mon
        (date(2026, 6, 7), 1, date(2026, 6, 8)),  # Sunday trigger is day 0 -> Mon
        (date(2026, 6, 7), 5, date(2026, 6, 12)),  # Sun -> Mon 8 (1) .. Fri 12 (5)
        (date(2026, 12, 26), 1, date(2026, 12, 29)),  # Boxing Day (Sat), Mon 28 sub -> Tue 29
        (date(2026, 12, 25), 5, date(2027, 1, 5)),  # 29 (1), 30 (2), 31 (3), Mon 4 (4), Tue 5 (5)
        (date(2027, 1, 1), 1, date(2027, 1, 4)),  # New Year's Day (Fri) trigger -> Mon 4
        (date(2026, 4, 3), 1, date(2026, 4, 7)),  # Good Friday trigger -> Tue 7 (Easter Monday skipped)
        (date(2026, 12, 28), 1, date(2026, 12, 29)),  # substitute day as trigger -> next day
    ],
    ids=lambda value: str(value),
)
def test_a_trigger_on_a_weekend_or_holiday_is_day_zero(start: date, days: int, expected: date) -> None:
    assert CALENDAR.add_working_days(start, days) == expected


def test_closure_days_from_the_constructor_are_not_working_days() -> None:
    calendar = WorkingDayCalendar(closure_days=[date(2026, 12, 24), date(2026, 12, 29)])
    assert calendar.closure_days == frozenset({date(2026, 12, 24), date(2026, 12, 29)})
    assert not calendar.is_working_day(date(2026, 12, 24))
    # Wed 23 -> [Thu 24 closed, Fri 25, Sat, Sun, Mon 28 sub, Tue 29 closed] -> Wed 30
    assert calendar.add_working_days(date(2026, 12, 23), 1) == date(2026, 12, 30)
    # The default calendar is unchanged by another instance's closure days.
    assert CALENDAR.add_working_days(date(2026, 12, 23), 1) == date(2026, 12, 24)


def test_a_closure_day_on_a_weekend_changes_nothing() -> None:
    calendar = WorkingDayCalendar(closure_days={date(2026, 6, 6)})
    assert calendar.add_working_days(date(2026, 6, 5), 1) == date(2026, 6, 8)


def test_a_closure_day_as_trigger_is_still_day_zero() -> None:
    calendar = WorkingDayCalendar(closure_days={date(2026, 6, 3)})
    assert calendar.add_working_days(date(2026, 6, 3), 1) == date(2026, 6, 4)


def test_closure_days_accept_any_iterable_once() -> None:
    calendar = WorkingDayCalendar(closure_days=(d for d in [date(2026, 6, 4)]))
    assert calendar.add_working_days(date(2026, 6, 3), 1) == date(2026, 6, 5)
    assert calendar.add_working_days(date(2026, 6, 3), 1) == date(2026, 6, 5)


@pytest.mark.parametrize("days", [0, -1])
def test_a_clock_counts_at_least_one_day(days: int) -> None:
    with pytest.raises(ValueError, match="at least one working day"):
        CALENDAR.add_working_days(date(2026, 6, 1), days)
    with pytest.raises(ValueError, match="at least one working day"):
        CALENDAR.subtract_working_days(date(2026, 6, 1), days)


def test_a_calendar_closed_for_over_a_year_is_refused() -> None:
    start = date(2030, 1, 1)
    calendar = WorkingDayCalendar(closure_days=[start + timedelta(days=n) for n in range(400)])
    with pytest.raises(ValueError, match="closure days"):
        calendar.add_working_days(start - timedelta(days=1), 1)
    with pytest.raises(ValueError, match="closure days"):
        calendar.subtract_working_days(start + timedelta(days=400), 1)


@pytest.mark.parametrize(
    ("end", "days", "expected"),
    [
        (date(2027, 1, 4), 1, date(2026, 12, 31)),  # Fri 1 Jan hol -> Thu 31
        (date(2026, 12, 29), 1, date(2026, 12, 24)),  # Mon 28 sub, Fri 25 -> Thu 24
        (date(2026, 4, 7), 1, date(2026, 4, 2)),  # Easter Monday, Good Friday -> Thu 2
        (date(2026, 6, 2), 7, date(2026, 5, 21)),  # Mon 1 (1), Fri 29..Tue 26 (5), [25] 22 (6), 21 (7)
        (date(2026, 6, 6), 1, date(2026, 6, 5)),  # from a Saturday
    ],
    ids=lambda value: str(value),
)
def test_subtract_working_days(end: date, days: int, expected: date) -> None:
    assert CALENDAR.subtract_working_days(end, days) == expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 12, 24), date(2026, 12, 29)),
        (date(2026, 12, 31), date(2027, 1, 4)),
        (date(2026, 6, 1), date(2026, 6, 2)),
    ],
    ids=str,
)
def test_next_working_day(day: date, expected: date) -> None:
    assert CALENDAR.next_working_day(day) == expected


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2026, 12, 22), date(2026, 12, 31), 5),  # 23, 24, 29, 30, 31
        (date(2026, 12, 24), date(2026, 12, 28), 0),  # 25, 26, 27, 28 are all closed
        (date(2026, 12, 24), date(2026, 12, 24), 0),
        (date(2026, 12, 31), date(2026, 12, 22), 0),  # end before start
        (date(2026, 6, 5), date(2026, 6, 8), 1),  # Fri -> Mon
    ],
    ids=str,
)
def test_working_days_between(start: date, end: date, expected: int) -> None:
    assert CALENDAR.working_days_between(start, end) == expected


# -- London dates and the clock changes ---------------------------------------------------------

@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        # GMT in winter: UTC and London agree
        ("2026-12-23T10:15:00+00:00", date(2026, 12, 23)),
        ("2026-12-24T23:59:59+00:00", date(2026, 12, 24)),
        # BST in summer: late evening UTC is already the next day in London
        ("2026-07-01T22:59:59+00:00", date(2026, 7, 1)),
        ("2026-07-01T23:00:00+00:00", date(2026, 7, 2)),
        ("2026-07-01T23:30:00+00:00", date(2026, 7, 2)),
        # BST starts: Sunday 2026-03-29 at 01:00 UTC (01:00 GMT -> 02:00 BST)
        ("2026-03-28T23:30:00+00:00", date(2026, 3, 28)),  # Saturday night, still GMT
        ("2026-03-29T00:59:59+00:00", date(2026, 3, 29)),
        ("2026-03-29T01:00:00+00:00", date(2026, 3, 29)),
        ("2026-03-29T22:59:59+00:00", date(2026, 3, 29)),  # 23:59:59 BST
        ("2026-03-29T23:00:00+00:00", date(2026, 3, 30)),  # 00:00 BST Monday
        # BST ends: Sunday 2026-10-25 at 01:00 UTC (02:00 BST -> 01:00 GMT)
        ("2026-10-24T22:59:59+00:00", date(2026, 10, 24)),  # 23:59:59 BST Saturday
        ("2026-10-24T23:00:00+00:00", date(2026, 10, 25)),  # 00:00 BST Sunday
        ("2026-10-25T00:30:00+00:00", date(2026, 10, 25)),  # 01:30 BST
        ("2026-10-25T01:30:00+00:00", date(2026, 10, 25)),  # 01:30 GMT (the repeated hour)
        ("2026-10-25T23:30:00+00:00", date(2026, 10, 25)),  # 23:30 GMT: no longer a day ahead
        # Other offsets are converted, not read off the wall clock
        ("2026-07-02T00:30:00+02:00", date(2026, 7, 1)),  # 22:30 UTC = 23:30 BST
        ("2026-12-23T20:00:00-05:00", date(2026, 12, 24)),  # 01:00 UTC = 01:00 GMT
        ("2026-07-01T18:30:00-05:00", date(2026, 7, 2)),  # 23:30 UTC = 00:30 BST
    ],
)
def test_london_date(moment: str, expected: date) -> None:
    assert london_date(utc(moment)) == expected


def test_london_date_accepts_a_london_timestamp() -> None:
    assert london_date(datetime(2026, 7, 2, 0, 30, tzinfo=LONDON)) == date(2026, 7, 2)


def test_london_date_refuses_a_naive_timestamp() -> None:
    with pytest.raises(ValueError, match="timezone"):
        london_date(datetime(2026, 7, 1, 23, 30))


class _NoOffset(tzinfo):
    """A tzinfo that answers None for the offset: as good as naive."""

    def utcoffset(self, dt: datetime | None) -> None:
        return None

    def dst(self, dt: datetime | None) -> None:
        return None

    def tzname(self, dt: datetime | None) -> None:
        return None


def test_london_date_refuses_a_tzinfo_without_an_offset() -> None:
    with pytest.raises(ValueError, match="timezone"):
        london_date(datetime(2026, 7, 1, 23, 30, tzinfo=_NoOffset()))


@pytest.mark.parametrize(
    ("referred_at", "due"),
    [
        # The 1-working-day DSP decision, from a timestamp: the London date is day 0.
        ("2026-05-21T22:30:00+00:00", date(2026, 5, 22)),  # Thu 23:30 BST -> Fri 22
        ("2026-05-21T23:30:00+00:00", date(2026, 5, 26)),  # Fri 00:30 BST; Mon 25 hol -> Tue 26
        ("2026-08-30T23:30:00+00:00", date(2026, 9, 1)),  # Mon 31 (hol) 00:30 BST -> Tue 1 Sep
        ("2026-03-29T22:30:00+00:00", date(2026, 3, 30)),  # BST-start Sunday 23:30 -> Mon 30
        ("2026-03-29T23:30:00+00:00", date(2026, 3, 31)),  # Mon 30 00:30 BST -> Tue 31
        ("2026-03-29T00:30:00+00:00", date(2026, 3, 30)),  # 00:30 GMT Sunday, before the change
        ("2026-10-25T00:30:00+00:00", date(2026, 10, 26)),  # BST-end Sunday 01:30 BST -> Mon 26
        ("2026-10-25T23:30:00+00:00", date(2026, 10, 26)),  # 23:30 GMT Sunday -> Mon 26
        ("2026-10-24T23:30:00+00:00", date(2026, 10, 26)),  # Sat 23:30 UTC = Sun 00:30 BST -> Mon 26
        ("2026-12-24T23:30:00+00:00", date(2026, 12, 29)),  # GMT: still Thu 24 -> Tue 29
    ],
)
def test_counting_from_a_timestamp_uses_the_london_date(referred_at: str, due: date) -> None:
    assert CALENDAR.add_working_days(london_date(utc(referred_at)), 1) == due


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 7, 1), "2026-07-01T23:00:00+00:00"),  # BST: midnight is 23:00 UTC
        (date(2026, 12, 24), "2026-12-25T00:00:00+00:00"),  # GMT
        (date(2026, 3, 28), "2026-03-29T00:00:00+00:00"),  # Saturday before BST starts
        (date(2026, 3, 29), "2026-03-29T23:00:00+00:00"),  # BST starts: a 23-hour day
        (date(2026, 10, 24), "2026-10-24T23:00:00+00:00"),  # Saturday before BST ends
        (date(2026, 10, 25), "2026-10-26T00:00:00+00:00"),  # BST ends: a 25-hour day
    ],
    ids=str,
)
def test_end_of_london_day(day: date, expected: str) -> None:
    end = end_of_london_day(day)
    assert end == utc(expected)
    assert end.utcoffset() == timedelta(0)


def test_london_day_lengths_on_the_clock_change_sundays() -> None:
    def length(day: date) -> timedelta:
        return end_of_london_day(day) - end_of_london_day(day - timedelta(days=1))

    assert length(date(2026, 3, 29)) == timedelta(hours=23)
    assert length(date(2026, 10, 25)) == timedelta(hours=25)
    assert length(date(2026, 7, 1)) == timedelta(hours=24)


@pytest.mark.parametrize(
    ("day", "at", "expected"),
    [
        (date(2026, 7, 1), time(9, 0), "2026-07-01T08:00:00+00:00"),
        (date(2026, 12, 24), time(9, 0), "2026-12-24T09:00:00+00:00"),
    ],
    ids=str,
)
def test_london_time(day: date, at: time, expected: str) -> None:
    assert london_time(day, at) == utc(expected)


# -- properties ---------------------------------------------------------------------------------

days_2000_2040 = st.dates(min_value=MIN_DAY, max_value=MAX_DAY)
utc_moments_2000_2040 = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2040, 12, 31), timezones=st.just(UTC)
)
clock_lengths = st.integers(min_value=1, max_value=30)


@st.composite
def calendars_near(draw: st.DrawFn, start: date) -> WorkingDayCalendar:
    """A calendar with random closure days in the weeks around `start`, where they can matter."""
    offsets = draw(st.sets(st.integers(min_value=-10, max_value=60), max_size=15))
    return WorkingDayCalendar(closure_days={start + timedelta(days=offset) for offset in offsets})


@st.composite
def trigger_and_calendar(draw: st.DrawFn) -> tuple[date, WorkingDayCalendar]:
    start = draw(days_2000_2040)
    return start, draw(calendars_near(start))


@PROPERTY_SETTINGS
@given(case=trigger_and_calendar(), days=clock_lengths)
def test_due_date_is_a_working_day_exactly_n_working_days_strictly_after(
    case: tuple[date, WorkingDayCalendar], days: int
) -> None:
    start, calendar = case
    due = calendar.add_working_days(start, days)
    assert due > start
    assert calendar.is_working_day(due)
    assert due.weekday() < 5
    assert due not in calendar.closure_days
    assert CALENDAR.bank_holiday_name(due) is None
    assert calendar.working_days_between(start, due) == days
    # ...and it is the first such day: the day before has one working day fewer.
    assert calendar.working_days_between(start, due - timedelta(days=1)) == days - 1


@PROPERTY_SETTINGS
@given(case=trigger_and_calendar(), days=clock_lengths, later_by=st.integers(min_value=0, max_value=20))
def test_a_later_trigger_never_gives_an_earlier_due_date(
    case: tuple[date, WorkingDayCalendar], days: int, later_by: int
) -> None:
    start, calendar = case
    later = start + timedelta(days=later_by)
    assert calendar.add_working_days(later, days) >= calendar.add_working_days(start, days)


@PROPERTY_SETTINGS
@given(case=trigger_and_calendar(), days=st.integers(min_value=1, max_value=29))
def test_a_longer_clock_is_strictly_later(case: tuple[date, WorkingDayCalendar], days: int) -> None:
    start, calendar = case
    assert calendar.add_working_days(start, days + 1) > calendar.add_working_days(start, days)


@PROPERTY_SETTINGS
@given(case=trigger_and_calendar(), days=clock_lengths)
def test_closure_days_only_ever_push_a_due_date_later(
    case: tuple[date, WorkingDayCalendar], days: int
) -> None:
    start, calendar = case
    plain_due = CALENDAR.add_working_days(start, days)
    due = calendar.add_working_days(start, days)
    assert due >= plain_due
    counted = {start + timedelta(days=n) for n in range(1, (plain_due - start).days + 1)}
    if not counted & calendar.closure_days:
        assert due == plain_due
    else:
        closed_weekdays = {d for d in counted & calendar.closure_days if CALENDAR.is_working_day(d)}
        if closed_weekdays:
            assert due > plain_due


@PROPERTY_SETTINGS
@given(case=trigger_and_calendar(), days=clock_lengths)
def test_subtracting_undoes_adding(case: tuple[date, WorkingDayCalendar], days: int) -> None:
    start, calendar = case
    due = calendar.add_working_days(start, days)
    back = calendar.subtract_working_days(due, days)
    assert back <= start
    assert calendar.is_working_day(back)
    assert calendar.add_working_days(back, days) == due
    if calendar.is_working_day(start):
        assert back == start


@PROPERTY_SETTINGS
@given(day=days_2000_2040)
def test_next_working_day_is_one_working_day_after(day: date) -> None:
    assert CALENDAR.next_working_day(day) == CALENDAR.add_working_days(day, 1)


@PROPERTY_SETTINGS
@given(
    first=utc_moments_2000_2040,
    later_by=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)),
    days=clock_lengths,
)
def test_a_later_timestamp_never_gives_an_earlier_due_date(
    first: datetime, later_by: timedelta, days: int
) -> None:
    second = first + later_by
    assert london_date(second) >= london_date(first)
    assert CALENDAR.add_working_days(london_date(second), days) >= CALENDAR.add_working_days(
        london_date(first), days
    )


@PROPERTY_SETTINGS
@given(moment=utc_moments_2000_2040)
def test_a_timestamp_is_due_by_the_end_of_its_london_day(moment: datetime) -> None:
    day = london_date(moment)
    end = end_of_london_day(day)
    assert moment < end
    assert london_date(end) == day + timedelta(days=1)
    assert london_date(end - timedelta(microseconds=1)) == day
    assert end - end_of_london_day(day - timedelta(days=1)) in {
        timedelta(hours=23), timedelta(hours=24), timedelta(hours=25)
    }
