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
from typing import Any

from pydantic import ValidationError

from deployments.web.forms import DeskForm, Input, Widget, field_names, field_titles
from models.refusals import problem_in_words, rule_in_words
from models.refusals import spell_dates as spell_dates  # the pages spell a date as a refusal does

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


# The inputs a person chooses from rather than types into ("Choose ..." rather than "Enter ...").
_CHOSEN = frozenset({Widget.SELECT, Widget.RADIOS, Widget.CHECKBOXES, Widget.YES_NO})


def from_validation(error: ValidationError, form: DeskForm) -> Problems:
    """Each of the domain form's problems at its input, in the domain's words with the input's
    title and hint."""
    problems = Problems()
    titles = field_titles(form.model)
    for item in error.errors(include_input=False, include_url=False):
        location = tuple(item["loc"])
        if not location and item["type"] == "value_error":
            # A check across fields (a date before another): placed at the field it names first.
            _add_named(problems, form, str(item["msg"]).removeprefix("Value error, "))
            continue
        each = _input_for(form, location)
        if each is None:
            problems.add(None, problem_in_words(item, titles))
        else:
            problems.add(each.name, problem_in_words(item, titles, at=(each.title,),
                                                     choice=each.widget in _CHOSEN, hint=each.hint))
    return problems


def from_refusal(message: str, form: DeskForm) -> Problems:
    """A rule of the procedure's refusal, at the field it names, if it names one."""
    problems = Problems()
    _add_named(problems, form, message)
    return problems


_NAME = re.compile(r"[a-z][a-z0-9_]*")


def _add_named(problems: Problems, form: DeskForm, message: str) -> None:
    """`message` at the first of the form's fields it names (by code name), reworded with titles."""
    names = field_names(form.model)
    leading = _NAME.match(message)
    target: Input | None = None
    if leading is not None and leading.group() in names:
        target = _first_input(form, leading.group())
    problems.add(target.name if target is not None else None,
                 rule_in_words(message, field_titles(form.model), full_stop=False))


def _first_input(form: DeskForm, name: str) -> Input | None:
    return next((each for each in form.inputs if each.name == name or each.name.startswith(f"{name}.")
                 or each.name.endswith(f".{name}")), None)
