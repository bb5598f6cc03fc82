"""Why an answer was not recorded, in words a person reads on the form asked again: each field by
its title as the form shows it ("“Decided on”"), never by its code name (`decided_on`), and never
with a value that was typed (a refusal is kept with the form, and the dashboard's forms are kept in
Prefect).

Two kinds: the domain form's own checks (a pydantic `ValidationError`, one problem per field, read
without its input) and a rule of the procedure (a message that never holds a typed value, see
`models.errors`), whose code names of fields are replaced by their titles and whose ISO dates are
spelt out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from enum import Enum
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from models.choices import base_type

_ISO_DAY = re.compile(r"\b([0-9]{4})-([0-9]{2})-([0-9]{2})\b")
_CODE_NAME = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
_LEADING_NAME = re.compile(r"^[a-z]+\b")


def _own_title(name: str, info: FieldInfo) -> str:
    return info.title or name.replace("_", " ").capitalize()


def field_titles(form: type[BaseModel], *,
                 title: Callable[[str, FieldInfo], str] = _own_title) -> dict[str, str]:
    """The title of every field of `form` and of the forms nested in it, by code name (the outer
    form's title wins where a nested form has a field of the same name). `title` names a field
    as the form a person reads shows it; by default, its declared title."""
    titles: dict[str, str] = {}
    for info in form.model_fields.values():
        nested = base_type(info.annotation)
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            titles.update({name: found for name, found in field_titles(nested, title=title).items()
                           if name not in titles})
    titles.update({name: title(name, info) for name, info in form.model_fields.items()})
    return titles


def _quoted(title: str) -> str:
    return f"“{title}”"


def _field_at(form: type[BaseModel], location: tuple[Any, ...]) -> tuple[list[str], bool]:
    """The titles of the field at `location`, innermost first (none for the form as a whole), and
    whether a person chooses it rather than types it."""
    names = [part for part in location if isinstance(part, str)]
    titles: list[str] = []
    model: type[BaseModel] | None = form
    choice = False
    for name in names:
        info = model.model_fields.get(name) if model is not None else None
        if info is None:
            break
        titles.append(_own_title(name, info))
        kind = base_type(info.annotation)
        choice = kind is bool or (isinstance(kind, type) and issubclass(kind, Enum))
        model = kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None
    return titles[::-1], choice


def problem_in_words(problem: ErrorDetails, titles: Mapping[str, str], *, at: Sequence[str] = (),
                     choice: bool = False, hint: str = "") -> str:
    """One of the domain form's problems (read without its input) as a sentence, without its full
    stop. `at` is the field's title and those of the forms it is nested in, innermost first ("“Name”
    of “Director of ...”"; none for the form as a whole); `choice`, whether a person chooses it
    rather than types it; `hint`, what it may hold, added where it holds characters it cannot; `titles`
    name the fields a rule's message names by code name."""
    context: Mapping[str, Any] = problem.get("ctx") or {}
    message = str(problem["msg"])
    title = " of ".join(_quoted(each) for each in at) if at else "This field"
    match problem["type"]:
        case "missing":
            return f"{'Choose' if choice else 'Enter'} {title}"
        case "string_too_short":
            return f"{title} needs at least {context.get('min_length')} characters"
        case "string_too_long":
            return f"{title} can hold at most {context.get('max_length')} characters"
        case "string_pattern_mismatch":
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
            rule = rule_in_words(text, titles).rstrip(".")
            return f"{title}: {rule}" if at else rule


def validation_in_words(error: ValidationError, form: type[BaseModel], *,
                        extra_titles: Mapping[str, str] | None = None) -> str:
    """Each of the domain form's problems as a sentence naming its field by title."""
    titles = {**field_titles(form), **(extra_titles or {})}
    sentences: list[str] = []
    for item in error.errors(include_input=False, include_url=False):
        at, choice = _field_at(form, tuple(item["loc"]))
        sentence = problem_in_words(item, titles, at=at, choice=choice)
        if sentence not in sentences:
            sentences.append(sentence)
    return " ".join(f"{_capitalised(sentence)}." for sentence in sentences)


def rule_in_words(message: str, titles: Mapping[str, str], *, full_stop: bool = True) -> str:
    """A rule's refusal with the fields' code names replaced by their titles (a name with an
    underscore anywhere, a one-word name only where it begins the message) and its ISO dates spelt
    out, its first letter capitalised and (with `full_stop`) ending with a full stop: a message
    shown alone at its field, as the desk shows it, ends as the rule wrote it."""
    def titled(found: re.Match[str]) -> str:
        word = found.group()
        return _quoted(titles[word]) if word in titles else word

    text = spell_dates(message.strip())
    text = _CODE_NAME.sub(titled, text)
    text = _LEADING_NAME.sub(titled, text)
    text = _capitalised(text)
    return text if not full_stop or text.endswith((".", "?", "!", ")")) else f"{text}."


def spell_dates(text: str) -> str:
    """`text` with each ISO date in it spelt out (`Fri 16 Apr 2027`)."""
    return _ISO_DAY.sub(_spelt_day, text)


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _spelt_day(found: re.Match[str]) -> str:
    """A date in a message as a person reads it (a date in a message is the procedure's own)."""
    try:
        return f"{date(*(int(part) for part in found.groups())):%a %d %b %Y}"
    except ValueError:
        return found.group()
