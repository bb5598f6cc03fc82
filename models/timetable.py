"""How a step's due date follows from its anchor date: the clocks, the partnership's settings for
them, and the timetable of every step whose anchor date is known.

A step's clock is an object (`WorkingDaysAfter`, `WorkingDaysBefore`, `MonthsAfter`, `DateSet`)
held by the step's declaration (`models.registry.Step`), so the procedure engine, the dashboard's
forms and `sbu timetable` all count from the same definition. A clock's length is a fixed number
or a `ClockSetting`: a named length with the procedure's default and the most a partnership may
set, so a new step brings its own setting without an edit here. `Clocks` holds what a partnership
set (`SBU_CLOCKS__<NAME>`); the registry checks each name and bound against the settings its
steps declare (`Registry.check_clocks`).

Dates in, dates out: the caller supplies the anchors and the calendar; nothing here reads the wall
clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.calendar import WorkingDayCalendar, london_date
from models.enums import Anchor, Role

__all__ = ["Anchor", "ClockSetting", "Clocks", "DateSet", "Deadline", "MonthsAfter", "StepClock",
           "StepRule", "WorkingDaysAfter", "WorkingDaysBefore", "known_anchors", "timetable"]

# A setting's name as `SBU_CLOCKS__<NAME>` gives it, lowercased.
_SETTING_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


@dataclass(frozen=True, slots=True)
class ClockSetting:
    """A clock length a partnership may set (`SBU_CLOCKS__<NAME>`, e.g. `SBU_CLOCKS__SIN_SUBMISSION_DAYS`):
    its name, the procedure's default, and the most it may be set to. Every length is at least 1."""

    name: str
    default: int
    at_most: int

    def __post_init__(self) -> None:
        # Fail when the step is declared, not when a case first reaches it.
        if not _SETTING_NAME.fullmatch(self.name):
            raise ValueError(f"clock setting {self.name!r}: lowercase letters, digits and underscores")
        if not 1 <= self.default <= self.at_most:
            raise ValueError(f"clock setting {self.name}: its default must be from 1 to {self.at_most}")


Length = ClockSetting | int


class Clocks(BaseModel):
    """The clock lengths a partnership set, by setting name: `Clocks(sin_submission_days=6)`. A clock
    not set has its default. Only the shape is checked here (a name, a whole number of at least 1);
    whether each name is a setting some step declares, and within its bound, is the registry's
    check (`Registry.check_clocks`), since a partnership's own process may bring settings too."""

    model_config = ConfigDict(frozen=True, extra="allow")
    __pydantic_extra__: dict[str, Annotated[int, Field(ge=1)]] = Field(init=False)

    @model_validator(mode="after")
    def _named_as_settings(self) -> Clocks:
        for name in self.set_lengths:
            if not _SETTING_NAME.fullmatch(name):
                raise ValueError(f"{name}: a clock setting is named in lowercase letters, digits and "
                                 "underscores")
        return self

    @property
    def set_lengths(self) -> dict[str, int]:
        """What the partnership set, by setting name."""
        return dict(self.model_extra or {})

    def length(self, value: Length) -> int:
        """A clock's length: a fixed number, or the partnership's setting, else its default."""
        if isinstance(value, int):
            return value
        length = self.set_lengths.get(value.name, value.default)
        if not 1 <= length <= value.at_most:
            raise ValueError(f"clock setting {value.name} must be from 1 to {value.at_most}")
        return length


def _check_length(value: Length | None) -> None:
    if isinstance(value, int) and value < 1:
        raise ValueError("a clock counts at least one working day")


class StepClock(Protocol):
    """How a step's due date follows from its anchor date."""

    def due(self, anchor_date: date, *, anchor: Anchor, clocks: Clocks, calendar: WorkingDayCalendar,
            near_miss: bool) -> tuple[date, str]:
        """The due date, and the rule in words."""
        ...

    def settings(self) -> tuple[ClockSetting, ...]:
        """The settings its lengths are read from."""
        ...


def _settings(*lengths: Length | None) -> tuple[ClockSetting, ...]:
    return tuple(length for length in lengths if isinstance(length, ClockSetting))


@dataclass(frozen=True, slots=True)
class WorkingDaysAfter:
    """Due on the Nth working day strictly after the anchor (the anchor day is day 0); a near miss
    may have a longer clock of its own. `held_on` words it as the day a meeting is held."""

    days: Length
    near_miss_days: Length | None = None
    held_on: bool = False

    def __post_init__(self) -> None:
        _check_length(self.days)
        _check_length(self.near_miss_days)

    def due(self, anchor_date: date, *, anchor: Anchor, clocks: Clocks, calendar: WorkingDayCalendar,
            near_miss: bool) -> tuple[date, str]:
        chosen = self.near_miss_days if near_miss and self.near_miss_days is not None else self.days
        days = clocks.length(chosen)
        if self.held_on:
            words = f"on working day {days} after {anchor.value}"
        else:
            words = f"{days} working {'day' if days == 1 else 'days'} after {anchor.value}"
        return calendar.add_working_days(anchor_date, days), words

    def settings(self) -> tuple[ClockSetting, ...]:
        return _settings(self.days, self.near_miss_days)


@dataclass(frozen=True, slots=True)
class WorkingDaysBefore:
    """Due on the Nth working day strictly before the anchor ("at least N working days before")."""

    days: Length

    def __post_init__(self) -> None:
        _check_length(self.days)

    def due(self, anchor_date: date, *, anchor: Anchor, clocks: Clocks, calendar: WorkingDayCalendar,
            near_miss: bool) -> tuple[date, str]:
        days = clocks.length(self.days)
        return calendar.subtract_working_days(anchor_date, days), f"{days} working days before {anchor.value}"

    def settings(self) -> tuple[ClockSetting, ...]:
        return _settings(self.days)


@dataclass(frozen=True, slots=True)
class MonthsAfter:
    """Due the same day N calendar months on; a day the month lacks clamps to its last day."""

    months: Length

    def __post_init__(self) -> None:
        _check_length(self.months)

    def due(self, anchor_date: date, *, anchor: Anchor, clocks: Clocks, calendar: WorkingDayCalendar,
            near_miss: bool) -> tuple[date, str]:
        months = clocks.length(self.months)
        return _add_months(anchor_date, months), f"{months} months after {anchor.value}"

    def settings(self) -> tuple[ClockSetting, ...]:
        return _settings(self.months)


@dataclass(frozen=True, slots=True)
class DateSet:
    """Due on a date a person sets when the item opens (an action's due date in the plan); there
    is no clock to count it from."""

    words: str

    def due(self, anchor_date: date, *, anchor: Anchor, clocks: Clocks, calendar: WorkingDayCalendar,
            near_miss: bool) -> tuple[date, str]:
        raise ValueError(f"the due date is {self.words}: it is given when the item opens")

    def settings(self) -> tuple[ClockSetting, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class StepRule:
    """A step's timing, as emails, forms and the timetable name it: who owns it, what starts its
    clock, how long it may take, and the authority. Each step declaration (`models.registry.Step`)
    holds one, made from its own fields."""

    step: str
    title: str
    owner: Role
    anchor: Anchor
    source: str
    clock: StepClock

    def due(self, anchor_date: date, *, clocks: Clocks, calendar: WorkingDayCalendar,
            near_miss: bool = False) -> tuple[date, str]:
        """The due date counted from `anchor_date`, and the rule in words."""
        return self.clock.due(anchor_date, anchor=self.anchor, clocks=clocks, calendar=calendar,
                              near_miss=near_miss)

    def deadline(self, *, anchor_date: date, clocks: Clocks, calendar: WorkingDayCalendar,
                 near_miss: bool = False) -> Deadline:
        due, words = self.due(anchor_date, clocks=clocks, calendar=calendar, near_miss=near_miss)
        return Deadline(step=self.step, title=self.title, due=due, anchor=self.anchor,
                        anchor_date=anchor_date, rule=words, source=self.source)

    @property
    def counted(self) -> bool:
        """Whether its due date is counted from its anchor (not set by a person)."""
        return not isinstance(self.clock, DateSet)


@dataclass(frozen=True, slots=True)
class Deadline:
    """One step's due date and how it was reached."""

    step: str
    title: str
    due: date
    anchor: Anchor
    anchor_date: date
    rule: str
    source: str


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for candidate_day in (day.day, 30, 29, 28):
        try:
            return date(year, month, candidate_day)
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has a 28th")


def timetable(rules: Iterable[StepRule], anchors: Mapping[Anchor, date], *, clocks: Clocks,
              calendar: WorkingDayCalendar, near_miss: bool = False) -> list[Deadline]:
    """The deadline of every rule whose anchor date is in `anchors` and whose date is counted (not
    set by a person): by anchor, in the order `anchors` gives them, then in the order of `rules`."""
    listed = list(rules)
    return [rule.deadline(anchor_date=on, clocks=clocks, calendar=calendar, near_miss=near_miss)
            for anchor, on in anchors.items() for rule in listed if rule.anchor == anchor and rule.counted]


def known_anchors(*, referred_at: datetime, la_aware: date | None = None, notified: date | None = None,
                  sin_submitted: date | None = None, near_miss: bool = False,
                  commissioned: date | None = None, planned_publication: date | None = None,
                  ) -> dict[Anchor, date]:
    """The anchor dates a timetable counts from, given what is known of a case, in the order of
    the procedure: the referral; the local authority's awareness (which starts no clock on a near
    miss: there is no SIN); the notification and the SIN's submission (the notification, unless
    told otherwise; none on a near miss, whose Rapid Review counts from the DSPs' decision and sends
    nothing to the Panel); a CSPR's commissioning and its planned publication date."""
    if notified is not None and la_aware is not None and notified < la_aware:
        raise ValueError("the notification date cannot be before the local authority became aware")
    if la_aware is None and not near_miss:
        raise ValueError("the date the local authority became aware is needed for its notification")
    given: dict[Anchor, date | None] = {
        Anchor.REFERRAL_RECEIVED: london_date(referred_at),
        Anchor.LA_AWARE: None if near_miss else la_aware,
        Anchor.NOTIFICATION: notified,
        Anchor.SIN_SUBMITTED: None if near_miss or notified is None else sin_submitted or notified,
        Anchor.CSPR_COMMISSIONED: commissioned,
        Anchor.PLANNED_PUBLICATION: planned_publication,
    }
    return {anchor: on for anchor, on in given.items() if on is not None}

