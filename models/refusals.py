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
from collections.abc import Mapping
from datetime import date
from enum import Enum
from typing import Any

from pydantic import BaseModel, ValidationError

from models.choices import base_type

_ISO_DAY = re.compile(r"\b([0-9]{4})-([0-9]{2})-([0-9]{2})\b")
_CODE_NAME = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
_LEADING_NAME = re.compile(r"^[a-z]+\b")


def field_titles(form: type[BaseModel]) -> dict[str, str]:
    """The title of every field of `form` and of the forms nested in it, by code name (the outer
    form's title wins where a nested form has a field of the same name)."""
    titles: dict[str, str] = {}
    for info in form.model_fields.values():
        nested = base_type(info.annotation)
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            titles.update({name: title for name, title in field_titles(nested).items() if name not in titles})
    titles.update({name: info.title or name.replace("_", " ").capitalize()
                   for name, info in form.model_fields.items()})
    return titles


def _quoted(title: str) -> str:
    return f"“{title}”"


def _field_at(form: type[BaseModel], location: tuple[Any, ...]) -> tuple[str, bool] | None:
    """The title of the field at `location` (nested fields as "“Name” of “Director of ...”") and
    whether a person chooses it rather than types it; None for the form as a whole."""
    names = [part for part in location if isinstance(part, str)]
    titles: list[str] = []
    model: type[BaseModel] | None = form
    choice = False
    for name in names:
        info = model.model_fields.get(name) if model is not None else None
        if info is None:
            break
        titles.append(info.title or name.replace("_", " ").capitalize())
        kind = base_type(info.annotation)
        choice = kind is bool or (isinstance(kind, type) and issubclass(kind, Enum))
        model = kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None
    if not titles:
        return None
    return " of ".join(_quoted(title) for title in reversed(titles)), choice


def _sentence(kind: str, message: str, context: Mapping[str, Any], field: tuple[str, bool] | None,
              titles: Mapping[str, str]) -> str:
    title, choice = field if field is not None else ("This field", False)
    match kind:
        case "missing":
            return f"{'Choose' if choice else 'Enter'} {title}"
        case "string_too_short":
            return f"{title} needs at least {context.get('min_length')} characters"
        case "string_too_long":
            return f"{title} can hold at most {context.get('max_length')} characters"
        case "string_pattern_mismatch":
            return f"{title} holds characters it cannot hold"
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
            if field is None:
                return rule_in_words(text, titles).rstrip(".")
            return f"{title}: {rule_in_words(text, titles).rstrip('.')}"


def validation_in_words(error: ValidationError, form: type[BaseModel], *,
                        extra_titles: Mapping[str, str] | None = None) -> str:
    """Each of the domain form's problems as a sentence naming its field by title."""
    titles = {**field_titles(form), **(extra_titles or {})}
    sentences: list[str] = []
    for item in error.errors(include_input=False, include_url=False):
        location = tuple(item["loc"])
        sentence = _sentence(str(item["type"]), str(item["msg"]), dict(item.get("ctx") or {}),
                             _field_at(form, location), titles)
        if sentence not in sentences:
            sentences.append(sentence)
    return " ".join(f"{_capitalised(sentence)}." for sentence in sentences)


def rule_in_words(message: str, titles: Mapping[str, str]) -> str:
    """A rule's refusal with the fields' code names replaced by their titles (a name with an
    underscore anywhere, a one-word name only where it begins the message) and its ISO dates spelt
    out, its first letter capitalised and ending with a full stop."""
    def titled(found: re.Match[str]) -> str:
        word = found.group()
        return _quoted(titles[word]) if word in titles else word

    text = _ISO_DAY.sub(_spelt_day, message.strip())
    text = _CODE_NAME.sub(titled, text)
    text = _LEADING_NAME.sub(titled, text)
    text = _capitalised(text)
    return text if text.endswith((".", "?", "!", ")")) else f"{text}."


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _spelt_day(found: re.Match[str]) -> str:
    """A date in a message as a person reads it (a date in a message is the procedure's own)."""
    try:
        return f"{date(*(int(part) for part in found.groups())):%a %d %b %Y}"
    except ValueError:
        return found.group()
