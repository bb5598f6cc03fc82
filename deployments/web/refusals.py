"""A refusal put into words at the field it is about, for the page that shows the form again with
everything typed still in it (GOV.UK's error pattern).

Two kinds: the domain form's own checks (a pydantic `ValidationError`, one problem per field) and a
rule of the procedure (`Refused`, one message). Neither repeats a value typed: pydantic's errors are
read without their input, and a rule's message never holds one (`models.errors`). A message naming
a field by its code name (`la_aware_date is before incident_date`) is placed at that field and
reads with the fields' titles instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import ValidationError

from deployments.web.forms import DeskForm, Input, Widget, field_names, field_titles

# What is said at the top of a form refused, above the list of problems.
NOTHING_WRITTEN = ("Nothing was recorded. Put right what is marked below and submit again: what you "
                   "typed is kept.")


@dataclass
class Problems:
    """What was wrong with a submission: messages by the input's name, and those about the whole form."""

    at: dict[str, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def add(self, name: str | None, message: str) -> None:
        if name is None:
            self.general.append(message)
        else:
            self.at.setdefault(name, []).append(message)

    def __bool__(self) -> bool:
        return bool(self.at or self.general)

    def summary(self, form: DeskForm) -> list[tuple[str | None, str]]:
        """Every problem in the form's order, each with the input's page id to link to."""
        listed: list[tuple[str | None, str]] = [(None, message) for message in self.general]
        for each in form.inputs:
            listed += [(each.dom_id, message) for message in self.at.get(each.name, ())]
        return listed


def _input_for(form: DeskForm, location: tuple[Any, ...]) -> Input | None:
    """The input a problem's location names: `("children", 0, "age_years")` is `children.0.age_years`,
    `("reviewers", 1)` is the reviewers' boxes, `("dsp_la", "name")` is the signature's name."""
    parts = [str(part) for part in location]
    while parts:
        found = form.input(".".join(parts))
        if found is not None:
            return found
        parts.pop()
    return None


def _quoted(title: str) -> str:
    return f"“{title}”"


def _pydantic_words(kind: str, message: str, context: dict[str, Any], each: Input | None) -> str:
    title = _quoted(each.title) if each is not None else "This field"
    choice = each is not None and each.widget in (Widget.SELECT, Widget.RADIOS, Widget.CHECKBOXES,
                                                  Widget.YES_NO)
    match kind:
        case "missing":
            return f"Choose {title}" if choice else f"Enter {title}"
        case "string_too_short":
            return f"{title} needs at least {context.get('min_length')} characters"
        case "string_too_long":
            return f"{title} can hold at most {context.get('max_length')} characters"
        case "string_pattern_mismatch":
            hint = each.hint if each is not None else ""
            return f"{title} holds characters it cannot hold" + (f": {hint}" if hint else "")
        case "enum" | "literal_error":
            return f"Choose {title} from the options given"
        case "bool_type" | "bool_parsing":
            return f"Choose yes or no for {title}"
        case "int_type" | "int_parsing" | "int_from_float":
            return f"{title} must be a whole number"
        case "greater_than_equal":
            return f"{title} must be at least {context.get('ge')}"
        case "less_than_equal":
            return f"{title} must be at most {context.get('le')}"
        case "too_short":
            return f"Choose or enter at least {context.get('min_length')} for {title}"
        case "too_long":
            return f"{title} takes at most {context.get('max_length')}"
        case "extra_forbidden":
            return "The form sent a field it does not have; reload the page and try again"
        case _:
            text = message.removeprefix("Value error, ")
            if text.startswith("Input should "):
                return f"{title} {text.removeprefix('Input ')}"
            return f"{title}: {_in_words(text, None)}"


def from_validation(error: ValidationError, form: DeskForm) -> Problems:
    """Each of the domain form's problems at its input, in words."""
    problems = Problems()
    for item in error.errors(include_input=False, include_url=False):
        location = tuple(item["loc"])
        each = _input_for(form, location)
        message = str(item["msg"])
        if not location and item["type"] == "value_error":
            # A check across fields (a date before another): placed at the field it names first.
            _add_named(problems, form, message.removeprefix("Value error, "))
            continue
        problems.add(each.name if each is not None else None,
                     _pydantic_words(item["type"], message, dict(item.get("ctx") or {}), each))
    return problems


def from_refusal(message: str, form: DeskForm) -> Problems:
    """A rule of the procedure's refusal, at the field it names, if it names one."""
    problems = Problems()
    _add_named(problems, form, message)
    return problems


_NAME = re.compile(r"[a-z][a-z0-9_]*")
_ISO_DAY = re.compile(r"\b([0-9]{4})-([0-9]{2})-([0-9]{2})\b")


def spell_dates(text: str) -> str:
    """`text` with each ISO date in it spelt out (`Fri 16 Apr 2027`)."""
    return _ISO_DAY.sub(_spelt_day, text)


def _spelt_day(found: re.Match[str]) -> str:
    """A date in a message as a person reads it (a date in a message is the procedure's, never typed)."""
    try:
        return f"{date(*(int(part) for part in found.groups())):%a %d %b %Y}"
    except ValueError:
        return found.group()


def _add_named(problems: Problems, form: DeskForm, message: str) -> None:
    """`message` at the first of the form's fields it names (by code name), reworded with titles."""
    names = field_names(form.model)
    leading = _NAME.match(message)
    target: Input | None = None
    if leading is not None and leading.group() in names:
        target = _first_input(form, leading.group())
    problems.add(target.name if target is not None else None, _in_words(message, form))


def _first_input(form: DeskForm, name: str) -> Input | None:
    return next((each for each in form.inputs if each.name == name or each.name.startswith(f"{name}.")
                 or each.name.endswith(f".{name}")), None)


def _in_words(message: str, form: DeskForm | None) -> str:
    """`message` with the fields' code names replaced by their titles (a name with an underscore
    anywhere, a one-word name only where it begins the message), its first letter capitalised."""
    message = _ISO_DAY.sub(_spelt_day, message.strip())
    if form is not None:
        titles = field_titles(form.model)

        def titled(found: re.Match[str]) -> str:
            word = found.group()
            return _quoted(titles[word]) if word in titles else word

        message = re.sub(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b", titled, message)
        message = re.sub(r"^[a-z]+\b", titled, message)
    return message[:1].upper() + message[1:]
