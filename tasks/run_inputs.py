"""The dashboard's forms, derived from the domain's: one Prefect `RunInput` per wait.

A wait that records one thing (one step, or one act) has that form's fields, with their titles and
descriptions, and a "Recorded by" field. A wait that offers several has one field, "What to
record", whose choices are those forms: the Prefect UI shows each as a tab with its own fields.
Their fields are named apart (each prefixed by its choice) because the UI tells which tab an answer
belongs to by the fields it has. Nothing is copied by hand, so a field added to a domain form
appears on the dashboard as it is.

The types are loosened on purpose: a text field is plain text here, with no pattern or length,
because Prefect's server validates an answer against the form's schema and its error would quote
what was typed. The flow validates the answer into the domain form instead (`domain_form`), whose
errors never echo a value (docs/architecture.md, "Data protection"), and asks again with the reason. A
required yes-or-no is
asked as a choice of "yes" or "no": the UI sends nothing for a switch left alone, and leaving it
alone must not answer "no".
"""

from __future__ import annotations

import types
import typing
from datetime import date
from enum import Enum
from functools import cache
from typing import Annotated, Any, Literal, Union

from prefect.input import RunInput
from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo

from models.access import SEAL_MARK
from models.errors import SbuError
from models.fields import HIDDEN_CHARACTERS, hidden_character_in
from models.registry import Choice, Wait, choice_label, choice_name, choice_title

# What `sbu` puts in every text field when it resumes a run after recording the step in the store
# itself (`WaitInput.placeholder`): the form's schema is met and nothing personal reaches Prefect.
RECORDED_IN_STORE = "Recorded with the sbu command; the details are in the case store."
PLACEHOLDER_DATE = date(2000, 1, 1)
RECORDED_BY = "recorded_by"
MAX_NAME = 80
RECORD = "record"
YES, NO = "yes", "no"
YesNo = Literal["yes", "no"]
# Separates a choice's prefix from a field's own name.
_SEPARATOR = "__"


class _Loose(BaseModel):
    """A loosened copy of a domain model: it refuses fields it does not have, so an answer can
    belong to one choice only."""

    model_config = ConfigDict(extra="forbid")


def loosened(annotation: Any, *, optional: bool = False) -> Any:
    """`annotation` without its constraints: text as plain `str`, lists, optionals and nested forms
    kept (loosened in turn; with `optional`, a nested form's fields are all optional too)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return loosened(typing.get_args(annotation)[0], optional=optional)
    if origin in (Union, types.UnionType):
        args = tuple(loosened(arg, optional=optional) for arg in typing.get_args(annotation))
        return Union[args]  # noqa: UP007 - built from a tuple of types
    if origin is list:
        return list[loosened(typing.get_args(annotation)[0], optional=optional)]  # type: ignore[misc]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _loose_model(annotation, prefix="", title=annotation.model_config.get("title"),
                            optional=optional)
    if isinstance(annotation, type) and issubclass(annotation, str) and not issubclass(annotation, Enum):
        return str
    return annotation


def _field(info: FieldInfo, *, optional: bool = False) -> tuple[Any, FieldInfo]:
    """A domain field as the dashboard asks it; with `optional`, never required (see
    `run_input_for`: a choice's fields are all optional)."""
    annotation = loosened(info.annotation, optional=optional)
    default: Any = ... if info.is_required() else info.default
    if annotation is bool and info.is_required():
        annotation = YesNo
    if not info.is_required() and info.default_factory is not None:
        default = info.default_factory()  # type: ignore[call-arg]
    if optional:
        annotation, default = annotation | None, None
    field: FieldInfo = Field(default, title=info.title, description=info.description,
                             json_schema_extra=_as_plain_input if default is None else None)
    return annotation, field


def _as_plain_input(schema: dict[str, Any]) -> None:
    """Show a field that may be left empty as its own input, not as a choice of types.

    The Prefect UI draws `X | None` as a switch between "X" and "None", set to "None": a person
    sees "Property is type None" where the field should be, and must find the switch before they
    can type (seen in a real browser on the SIN's form). Without the null and its default, the UI
    draws the plain input, marked "(Optional)", and sends nothing for it when it is left empty; the
    model still takes None, so an answer from `sbu` or the API is read as before.
    """
    variants = schema.get("anyOf")
    if isinstance(variants, list):
        kept = [variant for variant in variants if variant != {"type": "null"}]
        if len(kept) == 1 and len(kept) < len(variants):
            del schema["anyOf"]
            if "$ref" in kept[0]:
                # A shared definition (an agency) is referred to through allOf: beside a bare
                # $ref, the field's own title would be dropped, and the form must name it.
                schema["allOf"] = kept
            else:
                for key, value in kept[0].items():
                    schema.setdefault(key, value)
    if "default" in schema and schema["default"] is None:
        del schema["default"]


# Which loosened model stands for which domain model, and which of its fields ask yes or no.
_DOMAIN: dict[type[BaseModel], type[BaseModel]] = {}


@cache
def _loose_model(form: type[BaseModel], *, prefix: str, title: str | None, about: str | None = None,
                 optional: bool = False) -> type[BaseModel]:
    """`form` loosened; as a choice, its fields prefixed, `title` on its tab and `about` (the step's
    full title) leading the description under it."""
    fields: dict[str, Any] = {f"{prefix}{name}": _field(info, optional=optional)
                              for name, info in form.model_fields.items()}
    name = f"{form.__name__}{'Choice' if prefix else 'Input'}{'Optional' if optional else ''}"
    model: type[BaseModel] = create_model(name, __base__=_Loose, **fields)
    model.__doc__ = f"{about}. {form.__doc__ or ''}".strip() if about else form.__doc__
    model.model_config["title"] = title or form.__name__
    model.model_rebuild(force=True)
    _DOMAIN[model] = form
    return model


def _prefix(choice: Choice) -> str:
    return choice_name(choice).replace("-", "_") + _SEPARATOR


class WaitInput(RunInput):
    """The base of every wait's form: it knows the answer `sbu` sends in its place."""

    @classmethod
    def placeholder(cls) -> dict[str, Any]:
        """An answer that meets this form's schema and says nothing: what `sbu` sends when it has
        recorded the step in the store and the waiting run only needs waking. The flow reads the
        store before it waits, so it never reads this."""
        answer = _placeholder_of(cls)
        answer[RECORDED_BY] = "sbu"
        return answer


@cache
def run_input_for(wait: Wait) -> type[WaitInput]:
    """The dashboard form of `wait`."""
    fields: dict[str, Any] = {}
    if len(wait.choices) == 1:
        form = wait.choices[0].form
        fields.update({name: _field(info) for name, info in form.model_fields.items()})
    else:
        # Every field of a choice is optional on the dashboard. The Prefect UI shows a choice as a
        # tab and tells which tab an answer is by its fields; an answer that misses a required field
        # of a union fails Prefect's own check with a message quoting everything typed in the tab.
        # Optional, it reaches the flow, whose domain form names what is missing and asks again.
        variants = tuple(_loose_model(choice.form, prefix=_prefix(choice), title=choice_label(choice),
                                      about=choice_title(choice), optional=True)
                         for choice in wait.choices)
        fields[RECORD] = (Union[variants],  # noqa: UP007 - built from a tuple of types
                          Field(title="What to record", description="Choose one, then fill in its fields."))
    fields[RECORDED_BY] = (str, Field(title="Recorded by", description="Your name, for the audit trail."))
    name = "".join(part.capitalize() for part in wait.name.split("-")) + "Input"
    model: type[WaitInput] = create_model(name, __base__=WaitInput, **fields)
    # The form's title is the wait's, as a person names it, not the class name.
    model.model_config["title"] = wait.title
    model.model_rebuild(force=True)
    return model


def _placeholder_of(model: type[BaseModel]) -> dict[str, Any]:
    required = {name: info for name, info in model.model_fields.items() if info.is_required()}
    if not required and model.model_fields:
        # A choice whose fields are all optional: its first field names it.
        first, info = next(iter(model.model_fields.items()))
        return {first: _placeholder_value(info.annotation)}
    return {name: _placeholder_value(info.annotation) for name, info in required.items()}


def _placeholder_value(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return typing.get_args(annotation)[-1]  # "no" for a yes-or-no
    if origin is list:
        return []
    if origin in (Union, types.UnionType):
        return _placeholder_value(next(arg for arg in typing.get_args(annotation) if arg is not type(None)))
    if annotation is bool:
        return False
    if annotation is date:
        return PLACEHOLDER_DATE.isoformat()
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return next(iter(annotation)).value
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _placeholder_of(annotation)
    return RECORDED_IN_STORE


def domain_form(wait: Wait, answer: BaseModel) -> tuple[Choice, BaseModel]:
    """What `answer` records and its domain form, validated there (a `ValidationError` names the
    fields and never the values)."""
    if len(wait.choices) == 1:
        choice, values = wait.choices[0], answer.model_dump(exclude={RECORDED_BY})
    else:
        picked: BaseModel = getattr(answer, RECORD)
        choice = next(c for c in wait.choices if _DOMAIN.get(type(picked)) is c.form
                      and next(iter(type(picked).model_fields)).startswith(_prefix(c)))
        values = {name.removeprefix(_prefix(choice)): value for name, value in picked.model_dump().items()}
    return choice, choice.form.model_validate(_as_domain(choice.form, values))


def _as_domain(form: type[BaseModel], values: dict[str, Any]) -> dict[str, Any]:
    """The loosened answer in the domain form's shape: yes or no as a boolean, nested forms in
    turn, and empty fields left out."""
    fields = form.model_fields
    given: dict[str, Any] = {}
    for name, value in values.items():
        info = fields.get(name)
        # An empty field is left out: the domain form's default applies, or it names the field as
        # missing. A text field typed in and cleared again comes back from the UI as "".
        if info is None or value is None or value == "":
            continue
        if info.annotation is bool and value in (YES, NO):
            value = value == YES
        nested = info.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel) and isinstance(value, dict):
            value = _as_domain(nested, value)
        given[name] = value
    return given


def recorded_by(answer: BaseModel) -> str:
    """Who the answer says recorded it ("" if no one). Raises `SbuError` for a name holding a
    control or invisible character (a name is shown in the audit trail and `sbu status`), or
    longer than `MAX_NAME`."""
    value = getattr(answer, RECORDED_BY, "")
    if not isinstance(value, str):
        return ""
    if hidden_character_in(value):
        raise SbuError(f"{RECORDED_BY}: {HIDDEN_CHARACTERS}")
    # Behind the sign-in gateway the name carries its seal after it (models.access): the name is
    # what is held to the limit.
    name = value.rpartition(SEAL_MARK)[0] if SEAL_MARK in value else value
    if len(name.strip()) > MAX_NAME:
        # As `sbu --by` refuses it: a name cut short in the audit trail is not the name typed.
        raise SbuError(f"{RECORDED_BY}: a name is at most {MAX_NAME} characters")
    return value
