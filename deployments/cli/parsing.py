"""Dates and timestamps typed on the command line. Errors name the option, never what was typed."""

from __future__ import annotations

from datetime import date, datetime

from models.errors import SbuError


def parse_day(value: str, *, field_name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise SbuError(f"{field_name} must be a date as YYYY-MM-DD") from None


def parse_moment(value: str, *, field_name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise SbuError(f"{field_name} must be a timestamp as YYYY-MM-DDTHH:MM[:SS]+HH:MM") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise SbuError(f"{field_name} must carry a timezone offset (e.g. +00:00)")
    return moment
