"""What a case lets a person choose on a form, by title: the choices of a form's fields narrowed to
the case (the agencies involved, the agencies whose item is still open, the template's IMR
sections, the open actions), and which of a form's steps and acts are still to record.

Pure: computed from the case as the store shows it and the partnership's IMR template. A choice
is named by the procedure's own words (`models.titles`) and reads back as its value
(`value_of_choice`), so a form can offer titles and the store still records values. An action is
offered by its number, its agency and its due date, never by its summary: the summary is what a
person wrote, and a form's choices are kept where the form is (the dashboard's are in Prefect).
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Union

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from models.enums import ActionSource, Agency, Anchor
from models.registry import Act, Choice, Step
from models.state import CaseState, ItemState
from models.titles import agency_title, title_of, value_of, words

# The field naming an action of the plan (`ActionRef`), in every form that names one.
ACTION_FIELD = "action"
# The field naming the sections an IMR lacks (`SectionKey`).
SECTIONS_FIELD = "missing_sections"
# The step whose items are the actions of the plan, one per action.
ACTION_STEP = "action"
# An action's title as `action_title` writes it ("A1: Police, due 31 Mar 2027"), read back whole.
_ACTION_TITLE = re.compile(r"^A([1-9][0-9]{0,3}): (?:[A-Za-z()' ]+, )?due [0-9]{2} [A-Z][a-z]{2} [0-9]{4}$")


@dataclass(frozen=True, slots=True)
class Option:
    """One choice of a field: the value recorded, and the title a person reads."""

    value: str
    title: str


@dataclass(frozen=True, slots=True)
class FieldShape:
    """A field's annotation without `Annotated` and `| None`: what it holds (a `list[...]` as it
    is), whether it may be None, and every constraint met on the way (the field's own first)."""

    base: Any
    optional: bool
    metadata: tuple[Any, ...]

    @property
    def item(self) -> FieldShape | None:
        """The shape of one item of a list (its own constraints with it); None for anything else."""
        if typing.get_origin(self.base) is not list:
            return None
        return field_shape(typing.get_args(self.base)[0])

    @property
    def one(self) -> Any:
        """What one value of the field is: a list's item, itself unwrapped."""
        item = self.item
        return self.base if item is None else item.one


def field_shape(annotation: Any, metadata: Iterable[Any] = ()) -> FieldShape:
    """`annotation` (with the field's own `metadata`, if any) as a `FieldShape`. A union of two
    types or more besides None is left as it is: it is no one thing."""
    found = list(metadata)
    optional = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation, *more = typing.get_args(annotation)
            found += more
        elif origin in (Union, types.UnionType):
            args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            optional = optional or len(args) < len(typing.get_args(annotation))
            if len(args) != 1:
                break
            annotation = args[0]
        else:
            break
    return FieldShape(annotation, optional, tuple(found))


def base_type(annotation: Any) -> Any:
    """`annotation` without `Annotated`, `| None` and `list[...]`: what one value of it is."""
    return field_shape(annotation).one


def is_list(annotation: Any) -> bool:
    """Whether `annotation` (once `Annotated` and `| None` are taken off) is a list."""
    return field_shape(annotation).item is not None


def action_title(item: ItemState) -> str:
    """An action of the plan as a choice names it: its number, its agency and its due date."""
    agency = f"{agency_title(item.agency.value)}, " if item.agency is not None else ""
    return f"{item.subject.upper()}: {agency}due {item.due:%d %b %Y}"


def enum_options(enum: type[Enum], values: Sequence[Any] | None = None) -> tuple[Option, ...]:
    chosen = list(enum) if values is None else [enum(value) for value in values]
    return tuple(Option(str(member.value), title_of(member)) for member in chosen)


def _open_items(state: CaseState, step: str) -> list[ItemState]:
    return [item for item in state.items_of(step) if item.is_open]


def _subject_options(choice: Step, state: CaseState) -> tuple[Option, ...]:
    items = _open_items(state, choice.step)
    if choice.subject_field == ACTION_FIELD:
        return tuple(Option(item.subject, action_title(item)) for item in items)
    return tuple(sorted((Option(item.subject, agency_title(item.subject) if item.agency is not None
                                else words(item.subject)) for item in items),
                        key=lambda option: option.title))


def field_options(choice: Choice, state: CaseState, *,
                  imr_sections: Sequence[str]) -> dict[str, tuple[Option, ...]]:
    """The case's choices for each field of `choice`'s form that offers choices, by field name: for
    the field naming which item a step records (`Step.subject_field`), its open items; an agency
    elsewhere, the agencies involved; an action, the open actions; the sections an IMR lacks, the
    template's; any other closed choice, all of its values, titled."""
    options: dict[str, tuple[Option, ...]] = {}
    subject = choice.subject_field if isinstance(choice, Step) else None
    for name, info in choice.form.model_fields.items():
        kind = base_type(info.annotation)
        if name == subject:
            assert isinstance(choice, Step)
            options[name] = _subject_options(choice, state)
        elif kind is Agency:
            options[name] = enum_options(Agency, [a.value for a in state.agencies] or None)
        elif kind is ActionSource:
            sources = [source for source, anchor in ((ActionSource.RAPID_REVIEW, Anchor.RR_OUTCOME),
                                                     (ActionSource.CSPR, Anchor.CSPR_COMMISSIONED))
                       if state.anchors.get(anchor) is not None]
            options[name] = enum_options(ActionSource, sources)
        elif name == SECTIONS_FIELD:
            options[name] = tuple(Option(section, words(section)) for section in imr_sections)
        elif name == ACTION_FIELD:
            options[name] = tuple(Option(item.subject, action_title(item))
                                  for item in _open_items(state, ACTION_STEP))
        elif isinstance(kind, type) and issubclass(kind, Enum):
            options[name] = enum_options(kind)
    return options


def offered(choice: Choice, state: CaseState, options: dict[str, tuple[Option, ...]]) -> bool:
    """Whether a form offers `choice` now: a step while an item of it is open (a step done is not
    offered again), an act while every field it chooses from has something to choose (progress on
    an action only while one is open)."""
    if isinstance(choice, Act):
        return all(options.values())
    return any(item.is_open for item in state.items_of(choice.step))


def value_of_choice(info: FieldInfo, name: str, given: object) -> object:
    """A value given for the field `name` (`info`) of a domain form as its value: a title read back
    (an agency, a recommendation, an action by its number), anything else as given, for the
    domain form to check."""
    if not isinstance(given, str):
        return given
    kind = base_type(info.annotation)
    if isinstance(kind, type) and issubclass(kind, Enum):
        return value_of(kind, given) or given
    if name == ACTION_FIELD:
        found = _ACTION_TITLE.fullmatch(given)
        return f"a{found.group(1)}" if found else given
    return given


def domain_required(form: type[BaseModel]) -> list[str]:
    """The fields of `form` a person must fill in: those without a default."""
    return [name for name, info in form.model_fields.items() if info.is_required()]
