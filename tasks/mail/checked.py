"""The values an email may carry, checked when they are made: identifiers held to a strict spelling
(`Subject`, `SectionName`, `StepName`, `ProcessName`), a step's title as its rule spells it, the
one piece of typed text an email may carry (`MeetingPlace`), and the checks of a case reference,
a link, a header's line and a timestamp.

Every email builder (`tasks.mail.messages`, and a process's own) takes only such values, enums,
dates, the directory and the dashboard link: none takes free text, so no email can carry a name, a
child's record id, a narrative or a rationale. An email says what is due on which case, never what
happened. Errors never echo the value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import AfterValidator, GetCoreSchemaHandler
from pydantic_core import CoreSchema, core_schema

# Every pattern is applied with `fullmatch`: `re.match` would let `$` accept a trailing newline.
_CASE_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$")
EVENT = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
DEDUP_KEY = re.compile(r"^[A-Za-z0-9:._+@<>-]{1,200}$")
_URL = re.compile(r"^https?://[^\s<>\"'`\\\x00-\x1f\x7f]{1,490}$")
FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MIME_TOKEN = re.compile(r"^[a-z0-9][a-z0-9.+-]{0,40}$")
_SUBJECT = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_SECTION = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
# The registry's spelling of a step id (`models.registry`): lowercase words joined by single dashes.
_STEP_NAME = re.compile(r"^(?=.{1,40}$)[a-z][a-z0-9]*(-[a-z0-9]+)*$")
# A step's title as its rule spells it, e.g. "National Panel's response recorded".
_STEP_TITLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ',()./&:-]{0,99}$")
_PARTNERSHIP = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_PROCESS_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


class _Checked(str):
    """A `str` checked when it is made. As a pydantic field it is validated by making one, so a
    model cannot hold an unchecked value either."""

    __slots__ = ()

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(cls, core_schema.str_schema())


class Subject(_Checked):
    """Which item of a step an email is about (an agency, an action number): an identifier,
    never free text, so it is held to the same spelling as a step id."""

    __slots__ = ()

    def __new__(cls, value: str) -> Self:
        if not _SUBJECT.fullmatch(value):
            raise ValueError("an item's subject is lowercase letters, digits and dashes")
        return super().__new__(cls, value)


class SectionName(_Checked):
    """The name of a section of the partnership's IMR template, e.g. `agency-involvement`: an
    identifier spelt like a `Subject`, shown in an email as words ("Agency involvement")."""

    __slots__ = ()

    def __new__(cls, value: str) -> Self:
        if not _SECTION.fullmatch(value):
            raise ValueError("an IMR section's name is lowercase letters, digits and dashes")
        return super().__new__(cls, value)

    @property
    def words(self) -> str:
        """The name as a reader sees it: dashes as spaces, the first letter a capital."""
        text = self.replace("-", " ")
        return text[:1].upper() + text[1:]


class MeetingPlace(_Checked):
    """Where a meeting is held: a room, an address or a joining link (a URL may be given).

    This is the one piece of typed text an email carries. It is allowed because a meeting's room
    or link is logistics, not what happened: it goes into the invitation's text and its LOCATION,
    and never a name or a narrative should be typed here. It is held to one printable
    line of 2 to 200 characters without `<`, `>` or control characters, so it can add neither a
    header, nor markup, nor a line to the calendar file. Errors never echo the value."""

    __slots__ = ()

    def __new__(cls, value: str) -> Self:
        if not 2 <= len(value) <= 200 or len(value.strip()) < 2:
            raise ValueError("a meeting's place is 2 to 200 characters")
        if not value.isprintable() or "<" in value or ">" in value:
            raise ValueError("a meeting's place is one printable line without '<' or '>'")
        return super().__new__(cls, value)


class StepName(_Checked):
    """A step's id: one of the procedure's (`models.processes.StepId`) or one a registered process
    brought, spelt as the registry requires (lowercase letters and digits, words joined by single
    dashes)."""

    __slots__ = ()

    def __new__(cls, value: str) -> Self:
        if not _STEP_NAME.fullmatch(value):
            raise ValueError("a step id is lowercase letters and digits joined by single dashes")
        return super().__new__(cls, value)


class ProcessName(_Checked):
    """A process's id in the registry (`case`, `rapid-review`, a partnership's own)."""

    __slots__ = ()

    def __new__(cls, value: str) -> Self:
        if not _PROCESS_NAME.fullmatch(value):
            raise ValueError("a process id is lowercase letters, digits and dashes")
        return super().__new__(cls, value)


class StepTitle(_Checked):
    """A step's title as its rule gives it (`StepRule.title`), e.g. "Rapid Review meeting is
    held": written in code by whoever defined the step, never typed about a case. One line of up to
    100 letters, digits, spaces and `',()./&:-`."""

    __slots__ = ()

    def __new__(cls, value: str) -> Self:
        if not _STEP_TITLE.fullmatch(value):
            raise ValueError("a step's title is one line of letters, digits and simple punctuation")
        return super().__new__(cls, value)


class FileDigest(_Checked):
    """A file's SHA-256, as 64 lowercase hex digits: how an import's summary names its file."""

    __slots__ = ()

    def __new__(cls, value: str) -> Self:
        if not re.fullmatch(r"[0-9a-f]{64}", value):
            raise ValueError("a file's digest is 64 lowercase hex digits")
        return super().__new__(cls, value)


def no_line_breaks(value: str) -> str:
    # A CR or LF in a header value would start a new header: refused outright, never folded away.
    if "\r" in value or "\n" in value:
        raise ValueError("must be a single line")
    return value


def check_case_ref(value: str) -> str:
    if not _CASE_REF.fullmatch(value):
        raise ValueError("case_ref must be a case reference (letters, digits and dashes)")
    return value


def check_url(value: str) -> str:
    if not _URL.fullmatch(value):
        raise ValueError("dashboard_url must be an http(s) URL without spaces or quotes")
    return value


def check_partnership(value: str) -> str:
    if not _PARTNERSHIP.fullmatch(value):
        raise ValueError("partnership must be lowercase letters, digits and dashes")
    return value


def require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must carry a timezone")


def matching(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"not a valid {what}")
        return value

    return AfterValidator(check)


def section_names(names: Sequence[SectionName], what: str) -> list[SectionName]:
    # Checked again here: a caller's list of plain strings must not slip past the annotation.
    checked = list(dict.fromkeys(SectionName(name) for name in names))
    if not checked:
        raise ValueError(f"{what} must name at least one section")
    return checked


def one_line(value: str) -> str:
    """`value` (a mail server's reply, say) as one line of at most 300 characters."""
    return " ".join(value.split())[:300]


CaseRef = Annotated[str, AfterValidator(check_case_ref)]
SingleLine = Annotated[str, AfterValidator(no_line_breaks)]
