"""The constrained kinds of text a form may hold, and the mark on those that stay in the case store.

Kept apart from the forms so that settings (which name a meeting's place and the IMR template's
sections) can use them without building every form.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, StringConstraints

# -- text -------------------------------------------------------------------------------------------
#
# Characters no person means to type and every reader is misled by: controls (a NUL, an escape that
# recolours a terminal, a CR LF that starts an email header), invisible formatting (a zero-width
# space, a byte-order mark) and the bidirectional overrides that make text read other than it is
# stored (U+202A-E, U+2066-9), and the Unicode line and paragraph separators. Letters of every
# script are a person's own and stay allowed; only these are refused, and the error names the kind
# of character, never which one or where (that would echo the value).
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
_LINE_BREAKS = frozenset("\n\r\t")
HIDDEN_CHARACTERS = "contains a control character or an invisible or right-to-left formatting mark"


def hidden_character_in(value: str, *, multiline: bool = False) -> bool:
    """Whether `value` holds a character refused in typed text (see above); with `multiline`, line
    breaks and tabs are allowed (a rationale may have paragraphs)."""
    return any(unicodedata.category(ch) in _REFUSED_CATEGORIES
               and not (multiline and ch in _LINE_BREAKS) for ch in value)


def _one_line(value: str) -> str:
    if hidden_character_in(value):
        raise ValueError(HIDDEN_CHARACTERS)
    return value


def _paragraphs(value: str) -> str:
    if hidden_character_in(value, multiline=True):
        raise ValueError(HIDDEN_CHARACTERS)
    return value


def _printable(value: str) -> str:
    # As strict as the email layer's check of the same text (`MeetingPlace`): anything it would
    # refuse when the invitation is built is refused here, where the person can still correct it.
    if not value.isprintable():
        raise ValueError(HIDDEN_CHARACTERS)
    return value


OneLine = AfterValidator(_one_line)
Paragraphs = AfterValidator(_paragraphs)

# -- shape ----------------------------------------------------------------------------------------

# A form is at most three levels deep (a referral's children, a signature); an answer nested far
# deeper is refused before any field is read. Without this, an enum field handed a list nested
# thousands deep fails deep inside Python's own error message, with a RecursionError.
MAX_NESTING = 8


def nested_too_deeply(value: object, *, limit: int = MAX_NESTING) -> bool:
    """Whether `value` holds lists or dicts more than `limit` levels deep (counted without
    recursion, so any depth is safe to ask about)."""
    level: list[object] = [value]
    for _ in range(limit + 1):
        nested: list[object] = []
        for item in level:
            if isinstance(item, dict):
                nested.extend(item.values())
            elif isinstance(item, list | tuple):
                nested.extend(item)
        if not nested:
            return False
        level = nested
    return True


def refuse_deep_nesting(data: object, fields: Iterable[str]) -> None:
    """Raise a `ValueError` naming the first field of `data` nested too deeply (a key that is no
    field of the form is not named: it may be anything typed)."""
    if not isinstance(data, dict):
        return
    known = set(fields)
    for key, value in data.items():
        if nested_too_deeply(value):
            name = key if key in known else "a field"
            raise ValueError(f"{name}: nested too deeply")


# -- dates ------------------------------------------------------------------------------------------
#
# A date is typed as YYYY-MM-DD in ASCII digits, or given as a `date`. Pydantic's own parsing would
# also take a number (seconds since 1970) and a timestamp at midnight, and any year from 1 to 9999,
# whose arithmetic in the London timezone or the working-day calendar overflows. No date of a case
# falls outside these years; the procedure checks each date against the case itself.
EARLIEST_YEAR, LATEST_YEAR = 1900, 2199
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_ISO_MOMENT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
                         r"(Z|[+-][0-9]{2}:?[0-9]{2})?", re.ASCII)


def _iso_day(value: Any) -> Any:
    if isinstance(value, datetime):
        raise ValueError("Input should be a valid date (YYYY-MM-DD), not a timestamp")
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DAY.fullmatch(value):
        return value
    raise ValueError("Input should be a valid date, as YYYY-MM-DD")


def _iso_moment(value: Any) -> Any:
    # A timestamp without its offset passes on, to be refused as such by pydantic.
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_MOMENT.fullmatch(value):
        return value
    raise ValueError("Input should be a valid timestamp, as YYYY-MM-DDTHH:MM[:SS]+HH:MM")


def _within_years(value: date) -> date:
    if not within_years(value):
        raise ValueError(f"Input should be in the years {EARLIEST_YEAR} to {LATEST_YEAR}")
    return value


def is_iso_day(text: str) -> bool:
    """Whether `text` is spelt YYYY-MM-DD in ASCII digits (Python's own `date.fromisoformat` also
    takes `20261220` and week dates such as `2026-W51-7`)."""
    return _ISO_DAY.fullmatch(text) is not None


def is_iso_moment(text: str) -> bool:
    """Whether `text` is spelt YYYY-MM-DDTHH:MM[:SS[.ffffff]][offset] in ASCII digits."""
    return _ISO_MOMENT.fullmatch(text) is not None


def within_years(value: date) -> bool:
    """Whether `value` falls in the years a case's dates can (`EARLIEST_YEAR` to `LATEST_YEAR`)."""
    return EARLIEST_YEAR <= value.year <= LATEST_YEAR


# A day of the case: a date that was typed, held to ISO spelling and a sane range of years.
Day = Annotated[date, BeforeValidator(_iso_day), AfterValidator(_within_years)]
# A moment with its offset from UTC (when a referral was received).
Moment = Annotated[AwareDatetime, BeforeValidator(_iso_moment), AfterValidator(_within_years)]

ExternalRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")]
LaRecordId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$")]


class StoreOnly:
    """Marks a field holding a person's own words or a person's name. Its value is kept in the case
    store's record of the form (`records`) and nowhere else: not in an item's structured details,
    not in Prefect once read, never in an email or a log (docs/architecture.md, "Data protection")."""

    def __repr__(self) -> str:
        return "STORE_ONLY"


STORE_ONLY = StoreOnly()

PersonName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=80,
                                              pattern=r"^[^\r\n<>]+$"), OneLine, STORE_ONLY]
Rationale = Annotated[str, StringConstraints(strip_whitespace=True, min_length=10, max_length=4000),
                      Paragraphs, STORE_ONLY]
# What people write about a case: the learning, the immediate actions, an action and its progress.
Narrative = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=4000),
                      Paragraphs, STORE_ONLY]
Reference = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64,
                                             pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")]
# A job title such as "Head of Safeguarding": who in the agency owns an action.
JobTitle = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=80,
                                            pattern=r"^[A-Za-z][A-Za-z0-9 ,.'&()/-]*$"), STORE_ONLY]
# A meeting's room or link: logistics, sent to the attendees in the invitation.
Place = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=200,
                                         pattern=r"^[^\x00-\x1f\x7f<>]+$"),
                 AfterValidator(_printable)]
StartTime = Annotated[str, StringConstraints(strip_whitespace=True,
                                             pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
def _section_key(value: object) -> object:
    # "Lessons learned" and "lessons_learned" as typed on a form are the template's
    # `lessons-learned`.
    # Only printable ASCII is lowered and joined: a look-alike such as the Kelvin sign lowers to an
    # ASCII "k", and a line break would be joined as a dash; either would pass as a key it is not.
    if isinstance(value, str) and value.isascii() and value.isprintable():
        return "-".join(value.strip().lower().replace("_", " ").split())
    return value


# An IMR template's section, named as the partnership's settings name it (e.g. `lessons-learned`).
SectionKey = Annotated[str, BeforeValidator(_section_key),
                       StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,39}$")]
# An action of the plan: a1, a2, ...
ActionRef = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^a[1-9][0-9]{0,3}$")]


