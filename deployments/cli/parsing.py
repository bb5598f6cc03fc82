"""Dates and timestamps typed on the command line, spelt as the forms' dates are (`models.fields`).
Errors name the option, never what was typed."""

from __future__ import annotations

from datetime import date, datetime

from models.errors import SbuError
from models.fields import EARLIEST_YEAR, LATEST_YEAR, is_iso_day, is_iso_moment, within_years


def parse_day(value: str, *, field_name: str) -> date:
    try:
        if not is_iso_day(value):
            raise ValueError
        day = date.fromisoformat(value)
    except ValueError:
        raise SbuError(f"{field_name} must be a date as YYYY-MM-DD") from None
    if not within_years(day):
        raise SbuError(f"{field_name} must be in the years {EARLIEST_YEAR} to {LATEST_YEAR}")
    return day


def parse_moment(value: str, *, field_name: str) -> datetime:
    try:
        if not is_iso_moment(value):
            raise ValueError
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise SbuError(f"{field_name} must be a timestamp as YYYY-MM-DDTHH:MM[:SS]+HH:MM") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise SbuError(f"{field_name} must carry a timezone offset (e.g. +00:00)")
    if not within_years(moment):
        raise SbuError(f"{field_name} must be in the years {EARLIEST_YEAR} to {LATEST_YEAR}")
    return moment
