"""The one clock. Everything that needs the time is given a Clock, built from the settings
(`Settings.clock()`); nothing else reads the wall.

With a time scale, case time runs `scale` times faster than wall time from a fixed epoch, through
the same code path as real time, so a demo or a test lives weeks of a case in minutes.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current case time, timezone-aware, in UTC."""
        ...

    def wall_time_for(self, case_time: datetime) -> datetime:
        """The wall-clock instant at which the case clock reads `case_time`."""
        ...

    def wall_seconds(self, case_seconds: float) -> float:
        """How many wall seconds pass while `case_seconds` pass on the case clock."""
        ...


def utc_now() -> datetime:
    return datetime.now(UTC)


class ScaledClock:
    """Case time = start + (wall - epoch) * scale, where `start` defaults to `epoch`. With scale 1
    and no start it is the wall clock; a start lets a demo or a test begin on a chosen date."""

    def __init__(self, *, scale: float = 1.0, epoch: datetime | None = None,
                 start: datetime | None = None) -> None:
        if scale <= 0:
            raise ValueError("the time scale must be positive")
        self._scale = scale
        self._epoch = epoch or utc_now()
        self._start = start or self._epoch
        self._is_wall_clock = scale == 1.0 and self._start == self._epoch

    @property
    def scale(self) -> float:
        return self._scale

    def now(self) -> datetime:
        wall = datetime.fromtimestamp(time.time(), UTC)
        if self._is_wall_clock:
            return wall
        return self._start + (wall - self._epoch) * self._scale

    def wall_time_for(self, case_time: datetime) -> datetime:
        if self._is_wall_clock:
            return case_time.astimezone(UTC)
        return (self._epoch + (case_time - self._start) / self._scale).astimezone(UTC)

    def wall_seconds(self, case_seconds: float) -> float:
        return case_seconds / self._scale


class FixedClock:
    """A clock that reads what it is told: for tests of rules that depend on 'now'."""

    def __init__(self, moment: datetime) -> None:
        self._moment = moment

    def now(self) -> datetime:
        return self._moment

    def advance(self, delta: timedelta) -> None:
        self._moment += delta

    def wall_time_for(self, case_time: datetime) -> datetime:
        return case_time.astimezone(UTC)

    def wall_seconds(self, case_seconds: float) -> float:
        return case_seconds
